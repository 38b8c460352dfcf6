public import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// A payment processor that speaks the shape of Stripe's API: PaymentIntents and
/// Refunds, form-encoded, with `Authorization: Bearer <secret key>` and an
/// `Idempotency-Key` on every POST, so a request retried after a lost answer is not acted
/// on twice. Pointed at `https://api.stripe.com` it is Stripe; the tests point it at a
/// stand-in on loopback.
public struct PaymentProcessor: Sendable {
    public struct Configuration: Sendable {
        /// The API's base URL, without a trailing slash: `https://api.stripe.com`.
        public var baseURL: String
        /// The secret API key (`sk_…`). Never logged, never in an error.
        public var secretKey: String
        /// The webhook endpoint's signing secret (`whsec_…`), for `POST /webhooks/payments`.
        public var webhookSecret: String?
        /// The deadline of one request, connecting included.
        public var requestTimeout: Duration = .seconds(10)
        /// How old (or how far ahead) a webhook's signed timestamp may be.
        public var webhookTolerance: Duration = .seconds(300)

        public init(baseURL: String, secretKey: String, webhookSecret: String? = nil) {
            var baseURL = baseURL
            while baseURL.hasSuffix("/") { baseURL.removeLast() }
            self.baseURL = baseURL
            self.secretKey = secretKey
            self.webhookSecret = webhookSecret
        }

        /// Throws a message naming what is wrong (never the key).
        public func validate() throws {
            guard let url = URL(string: baseURL), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
                throw PaymentProcessorError(kind: .permanent, message: "the payment processor's URL must be http:// or https://")
            }
            guard !secretKey.isEmpty, !secretKey.utf8.contains(where: { $0 <= 0x20 || $0 >= 0x7F }) else {
                throw PaymentProcessorError(kind: .permanent, message: "the payment processor's secret key is empty or has spaces or control characters")
            }
        }
    }

    /// A PaymentIntent as created.
    public struct Intent: Sendable, Equatable {
        public var id: String
        public var clientSecret: String
    }

    public let configuration: Configuration
    private let client: HTTPClient

    /// Requests go through `client` (the process's shared one by default).
    public init(configuration: Configuration, client: HTTPClient = .shared) {
        self.configuration = configuration
        self.client = client
    }

    /// `POST /v1/payment_intents`: `amount` in the currency's minor unit, `currency` in
    /// lowercase, the order's id in `metadata[order_id]`.
    public func createIntent(amountCents: Int64, currency: String, orderID: Int64, idempotencyKey: String) async throws(PaymentProcessorError) -> Intent {
        let object = try await post("/v1/payment_intents", idempotencyKey: "checkout-" + idempotencyKey, form: [
            ("amount", String(amountCents)), ("currency", currency.lowercased()),
            ("metadata[order_id]", String(orderID)),
        ])
        guard let id = object["id"] as? String, let secret = object["client_secret"] as? String, !id.isEmpty, !secret.isEmpty else {
            throw PaymentProcessorError(kind: .transient, message: "the payment processor's answer has no id or client_secret")
        }
        return Intent(id: id, clientSecret: secret)
    }

    /// `POST /v1/refunds` of the whole of `intentID`. Returns the refund's id. A payment
    /// refunded already (`charge_already_refunded`) counts as refunded.
    public func refund(intentID: String, orderID: Int64, idempotencyKey: String) async throws(PaymentProcessorError) -> String? {
        do {
            let object = try await post("/v1/refunds", idempotencyKey: "refund-" + idempotencyKey, form: [
                ("payment_intent", intentID), ("metadata[order_id]", String(orderID)),
            ])
            return object["id"] as? String
        } catch where error.code == "charge_already_refunded" {
            return nil
        }
    }

    private func post(_ path: String, idempotencyKey: String, form: [(String, String)]) async throws(PaymentProcessorError) -> [String: Any] {
        var request = HTTPClientRequest(url: configuration.baseURL + path)
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer " + configuration.secretKey)
        request.headers.add(name: "Idempotency-Key", value: idempotencyKey)
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.body = .bytes(ByteBuffer(string: Self.formEncoded(form)))
        let status: Int, body: ByteBuffer
        do {
            let response = try await client.execute(request, timeout: WebhookWorker.timeAmount(configuration.requestTimeout))
            status = Int(response.status.code)
            body = try await response.body.collect(upTo: 256 * 1024)
        } catch {
            throw PaymentProcessorError(kind: .transient, message: "the payment processor did not answer: " + WebhookWorker.describe(error))
        }
        let object = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any]
        guard (200..<300).contains(status) else { throw PaymentProcessorError(status: status, body: object) }
        guard let object else { throw PaymentProcessorError(kind: .transient, message: "the payment processor's answer is not JSON") }
        return object
    }

    /// `application/x-www-form-urlencoded`, as Stripe reads it: brackets are kept in keys
    /// by escaping everything but unreserved characters.
    package static func formEncoded(_ fields: [(String, String)]) -> String {
        fields.map { escape($0.0) + "=" + escape($0.1) }.joined(separator: "&")
    }

    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }
}

/// A processor request that failed. `transient` ones may succeed later (no answer, a
/// 5xx, 429, or 409 for a request with the same key still running); `permanent` ones
/// will not (any other 4xx). The message comes from the processor's error, never from
/// our request: it holds no key.
public struct PaymentProcessorError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case transient, permanent }
    public var kind: Kind
    public var message: String
    /// The processor's error code (`card_declined`, `charge_already_refunded`, …).
    public var code: String?
    public var status: Int?

    public init(kind: Kind, message: String, code: String? = nil, status: Int? = nil) {
        self.kind = kind
        self.message = message
        self.code = code
        self.status = status
    }

    init(status: Int, body: [String: Any]?) {
        let error = body?["error"] as? [String: Any]
        let code = error?["code"] as? String
        let text = (error?["message"] as? String).map { String($0.prefix(300)) }
        let kind: Kind = status >= 500 || status == 429 || status == 409 ? .transient : .permanent
        self.init(kind: kind, message: "the payment processor answered \(status)" + (text.map { ": " + $0 } ?? ""), code: code, status: status)
    }

    public var description: String { message }
}
