import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import StockroomDelivery
import Synchronization

/// An HTTP receiver on 127.0.0.1, port 0, for webhook tests: records every request,
/// checks its signature with the secret it is given, and answers what it is told (200
/// unless a status is queued). `stop()` makes it refuse connections (down).
final class WebhookReceiver: Sendable {
    struct Request: Sendable {
        let path: String
        let method: String
        let headers: [String: String]
        let body: [UInt8]
        /// What the receiver answered.
        let status: Int
        let signatureValid: Bool

        var id: String { headers["webhook-id"] ?? "" }
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
    }

    private struct State {
        var requests: [Request] = []
        var statuses: [Int] = []
        var secret: String?
        var delay: TimeAmount = .zero
        var inFlight = 0
        var maxInFlight = 0
    }

    private let state = Mutex(State())
    private let server: LoopbackHTTPServer
    var port: Int { server.port }

    private init(server: LoopbackHTTPServer) { self.server = server }

    static func start() async throws -> WebhookReceiver {
        let box = Mutex<WebhookReceiver?>(nil)
        let server = try await LoopbackHTTPServer.start(answered: { box.withLock { $0 }?.answered() }) { head, body in
            box.withLock { $0 }.map { receiver in
                let (status, delay) = receiver.receive(head, body)
                return LoopbackHTTPServer.Answer(status: status, body: "ok", delay: delay)
            }
        }
        let receiver = WebhookReceiver(server: server)
        box.withLock { $0 = receiver }
        return receiver
    }

    func url(_ path: String = "/hook") -> String { "http://127.0.0.1:\(port)\(path)" }

    func use(secret: String) { state.withLock { $0.secret = secret } }

    /// The next requests get these statuses, in order; then 200 again.
    func answer(_ statuses: Int...) { state.withLock { $0.statuses += statuses } }

    var requests: [Request] { state.withLock { $0.requests } }

    /// Answer each request this long after it arrived.
    func answer(after delay: TimeAmount) { state.withLock { $0.delay = delay } }

    /// The most requests it was answering at one time.
    var maxInFlight: Int { state.withLock { $0.maxInFlight } }

    func stop() async { await server.stop() }

    /// Waits until `count` requests arrived, for at most `timeout`.
    @discardableResult
    func waitFor(_ count: Int, timeout: Duration = .seconds(10)) async throws -> [Request] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let requests = self.requests
            if requests.count >= count { return requests }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestClientError("expected \(count) webhook requests within \(timeout), got \(requests.count)")
    }

    private func answered() { state.withLock { $0.inFlight -= 1 } }

    private func receive(_ head: HTTPRequestHead, _ body: [UInt8]) -> (Int, TimeAmount) {
        var headers: [String: String] = [:]
        for (name, value) in head.headers { headers[name.lowercased()] = value }
        return state.withLock { state in
            let status = state.statuses.isEmpty ? 200 : state.statuses.removeFirst()
            var valid = false
            if let secret = state.secret, let key = WebhookSignature.key(fromSecret: secret),
               let id = headers["webhook-id"], let timestamp = headers["webhook-timestamp"].flatMap({ Int64($0) }),
               let signature = headers["webhook-signature"] {
                valid = WebhookSignature.verify(header: signature, key: key, id: id, timestamp: timestamp, body: body)
            }
            state.requests.append(Request(path: head.uri, method: "\(head.method)", headers: headers, body: body, status: status, signatureValid: valid))
            state.inFlight += 1
            state.maxInFlight = max(state.maxInFlight, state.inFlight)
            return (status, state.delay)
        }
    }
}
