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
    private let channel: any Channel
    let port: Int

    private init(channel: any Channel) {
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
    }

    static func start() async throws -> WebhookReceiver {
        let box = Mutex<WebhookReceiver?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(receive: { head, body in
                        box.withLock { $0 }?.receive(head, body) ?? (503, .zero)
                    }, answered: {
                        box.withLock { $0 }?.answered()
                    }))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let receiver = WebhookReceiver(channel: channel)
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

    func stop() async { try? await channel.close() }

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

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private let receive: @Sendable (HTTPRequestHead, [UInt8]) -> (Int, TimeAmount)
        private let answered: @Sendable () -> Void
        private var head: HTTPRequestHead?
        private var body: [UInt8] = []

        init(receive: @escaping @Sendable (HTTPRequestHead, [UInt8]) -> (Int, TimeAmount), answered: @escaping @Sendable () -> Void) {
            self.receive = receive
            self.answered = answered
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = []
            case .body(let buffer):
                body += buffer.readableBytesView
            case .end:
                guard let head else { return }
                let (status, delay) = receive(head, body)
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                let version = head.version
                context.eventLoop.scheduleTask(in: delay) {
                    let (handler, context) = bound.value
                    var headers = HTTPHeaders()
                    headers.add(name: "content-length", value: "2")
                    handler.answered()
                    context.write(handler.wrapOutboundOut(.head(HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: status), headers: headers))), promise: nil)
                    context.write(handler.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "ok")))), promise: nil)
                    context.writeAndFlush(handler.wrapOutboundOut(.end(nil)), promise: nil)
                }
            }
        }
    }
}
