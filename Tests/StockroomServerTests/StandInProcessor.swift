import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import NIOCore
import NIOHTTP1
import NIOPosix
import StockroomDelivery
import Synchronization

/// A payment processor on 127.0.0.1, port 0, that speaks the part of Stripe's API the
/// service uses: `POST /v1/payment_intents` and `POST /v1/refunds`, form-encoded, with
/// `Authorization: Bearer <key>` checked and `Idempotency-Key` honoured as Stripe does (the
/// same key gets the first answer again). `succeed(_:)` plays the customer confirming
/// the payment: it sends the service's webhook a signed `payment_intent.succeeded`.
final class StandInProcessor: Sendable {
    static let secretKey = "sk_test_standin"
    static let webhookSecret = "whsec_standin_test_secret"

    struct Request: Sendable {
        let method: String
        let path: String
        let headers: [String: String]
        let form: [String: String]
        let status: Int
    }

    struct Intent: Sendable {
        let id: String
        let clientSecret: String
        let amount: Int64
        let currency: String
        let orderID: String?
        var refunded = false
    }

    private struct State {
        var requests: [Request] = []
        var intents: [String: Intent] = [:]
        var refunds: [String: String] = [:]  // refund id → intent id
        /// Idempotency-Key → the answer given.
        var answers: [String: (Int, String)] = [:]
        var failures: [Int] = []
        /// Do the work, then answer this status instead (an answer lost on the way).
        var loseAnswers = 0
        var counter = 0
    }

    private let state = Mutex(State())
    private let server: LoopbackHTTPServer
    var port: Int { server.port }

    private init(server: LoopbackHTTPServer) { self.server = server }

    static func start() async throws -> StandInProcessor {
        let box = Mutex<StandInProcessor?>(nil)
        let server = try await LoopbackHTTPServer.start { head, body in
            box.withLock { $0 }.map { processor in
                let (status, text) = processor.handle(head, body)
                return LoopbackHTTPServer.Answer(status: status, body: text, contentType: "application/json")
            }
        }
        let processor = StandInProcessor(server: server)
        box.withLock { $0 = processor }
        return processor
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    var configuration: PaymentProcessor.Configuration {
        PaymentProcessor.Configuration(baseURL: baseURL, secretKey: Self.secretKey, webhookSecret: Self.webhookSecret)
    }

    var requests: [Request] { state.withLock { $0.requests } }
    var intents: [Intent] { state.withLock { Array($0.intents.values) } }
    var refundCount: Int { state.withLock { $0.refunds.count } }

    /// The next requests fail with these statuses (nothing done), in order.
    func fail(_ statuses: Int...) { state.withLock { $0.failures += statuses } }

    /// The next `count` requests are carried out, but answered 500: the answer is lost.
    func loseAnswers(_ count: Int) { state.withLock { $0.loseAnswers += count } }

    func stop() async { await server.stop() }

    /// The signed `payment_intent.succeeded` for `intentID`, as the processor sends it.
    func succeededEvent(_ intentID: String, eventID: String = "evt_\(UUID().uuidString.prefix(12))", amount: Int64? = nil) -> [UInt8] {
        let intent = state.withLock { $0.intents[intentID] }
        let object: [String: Any] = [
            "id": intentID, "object": "payment_intent", "status": "succeeded",
            "amount": amount ?? intent?.amount ?? 0, "amount_received": amount ?? intent?.amount ?? 0,
            "currency": intent?.currency ?? "eur", "metadata": ["order_id": intent?.orderID ?? ""],
        ]
        let event: [String: Any] = ["id": eventID, "object": "event", "type": "payment_intent.succeeded", "data": ["object": object]]
        return Array(try! JSONSerialization.data(withJSONObject: event))
    }

    /// POSTs `body` to the service's webhook, signed (with `secret`, at `timestamp`) as
    /// the processor signs; returns the status it answered.
    static func deliver(_ body: [UInt8], to port: Int, secret: String = webhookSecret, timestamp: Int64 = Int64(Date().timeIntervalSince1970), signature: String? = nil) async throws -> Int {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/webhooks/payments")!)
        request.httpMethod = "POST"
        request.httpBody = Data(body)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue(signature ?? ProcessorSignature.header(body: body, secret: secret, timestamp: timestamp), forHTTPHeaderField: "Stripe-Signature")
        let (_, response) = try await URLSession.shared.data(for: request)
        return (response as! HTTPURLResponse).statusCode
    }

    private func handle(_ head: HTTPRequestHead, _ body: [UInt8]) -> (Int, String) {
        var headers: [String: String] = [:]
        for (name, value) in head.headers { headers[name.lowercased()] = value }
        let form = Self.parseForm(String(decoding: body, as: UTF8.self))
        return state.withLock { state in
            let answer = Self.answer(&state, head: head, headers: headers, form: form)
            state.requests.append(Request(method: "\(head.method)", path: head.uri, headers: headers, form: form, status: answer.0))
            return answer
        }
    }

    private static func answer(_ state: inout State, head: HTTPRequestHead, headers: [String: String], form: [String: String]) -> (Int, String) {
        guard headers["authorization"] == "Bearer \(secretKey)" else { return error(401, "authentication_required", "Invalid API Key provided") }
        if !state.failures.isEmpty { return error(state.failures.removeFirst(), "api_error", "stand-in failure") }
        guard head.method == .POST, let key = headers["idempotency-key"], !key.isEmpty else { return error(400, "parameter_missing", "Idempotency-Key expected") }
        if let earlier = state.answers[key] { return earlier }
        let answer: (Int, String)
        switch head.uri {
        case "/v1/payment_intents":
            guard let amount = form["amount"].flatMap({ Int64($0) }), amount > 0, let currency = form["currency"], currency == currency.lowercased(), currency.count == 3 else {
                return error(400, "parameter_invalid", "amount and currency required")
            }
            state.counter += 1
            let id = "pi_standin\(state.counter)"
            let intent = Intent(id: id, clientSecret: "\(id)_secret_\(UUID().uuidString.prefix(8))", amount: amount, currency: currency, orderID: form["metadata[order_id]"])
            state.intents[id] = intent
            answer = (200, json(["id": id, "object": "payment_intent", "amount": amount, "currency": currency, "client_secret": intent.clientSecret, "status": "requires_payment_method"]))
        case "/v1/refunds":
            guard let intentID = form["payment_intent"], var intent = state.intents[intentID] else { return error(400, "resource_missing", "No such payment_intent") }
            guard !intent.refunded else { return error(400, "charge_already_refunded", "Charge has already been refunded.") }
            intent.refunded = true
            state.intents[intentID] = intent
            state.counter += 1
            let id = "re_standin\(state.counter)"
            state.refunds[id] = intentID
            answer = (200, json(["id": id, "object": "refund", "amount": intent.amount, "payment_intent": intentID, "status": "succeeded"]))
        default:
            return error(404, "resource_missing", "Unrecognized request URL")
        }
        state.answers[key] = answer
        if state.loseAnswers > 0 {
            state.loseAnswers -= 1
            return (500, "{}")
        }
        return answer
    }

    private static func error(_ status: Int, _ code: String, _ message: String) -> (Int, String) {
        (status, json(["error": ["type": "invalid_request_error", "code": code, "message": message]]))
    }

    private static func json(_ object: [String: Any]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    static func parseForm(_ text: String) -> [String: String] {
        var form: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map { String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            if parts.count == 2 { form[parts[0]] = parts[1] }
        }
        return form
    }
}
