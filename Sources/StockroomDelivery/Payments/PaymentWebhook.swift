public import Foundation
public import Logging
public import Stockroom

/// `POST /webhooks/payments`: the processor's events, Stripe's shape:
/// `{"id":"evt_…","type":"payment_intent.succeeded","data":{"object":{"id":"pi_…",
/// "amount":…,"currency":"eur",…}}}`, signed in `Stripe-Signature`.
///
/// The signature is checked before the body is even parsed: a forged or stale request
/// changes nothing and learns nothing but 400. `payment_intent.succeeded` pays the order
/// exactly once, however many times it comes (`PaymentRepository.applySucceeded`);
/// other event types are acknowledged and ignored. The answer's status is what the
/// processor acts on: 2xx is done, anything else is sent again later — so 503 when the
/// database is away, never for a request that will not get better.
public struct PaymentWebhook: Sendable {
    public struct Response: Sendable, Equatable {
        public var status: Int
        public var message: String
    }

    /// The largest body taken: Stripe's events are a few KiB.
    public static let maxBodyBytes = 256 * 1024

    let payments: PaymentRepository
    let secret: String
    let tolerance: Int64
    let logger: Logger

    public init(payments: PaymentRepository, secret: String, tolerance: Duration = .seconds(300), logger: Logger) {
        self.payments = payments
        self.secret = secret
        self.tolerance = tolerance.components.seconds
        self.logger = logger
    }

    public func handle(body: [UInt8], signature: String?, now: Date = Date()) async -> Response {
        do {
            try ProcessorSignature.verify(header: signature, body: body, secret: secret, now: Int64(now.timeIntervalSince1970), tolerance: tolerance)
        } catch {
            let reason = switch error {
            case .malformed: "missing or malformed Stripe-Signature"
            case .stale: "signature timestamp outside the tolerance"
            case .mismatch: "no signature matches"
            }
            logger.notice("payment webhook refused", metadata: ["reason": "\(reason)"])
            return Response(status: 400, message: reason)
        }
        guard let event = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any],
              let id = event["id"] as? String, let type = event["type"] as? String,
              (1...255).contains(id.utf8.count), (1...255).contains(type.utf8.count)
        else { return Response(status: 400, message: "not an event") }
        guard type == "payment_intent.succeeded" else { return Response(status: 200, message: "ignored") }
        guard let object = (event["data"] as? [String: Any])?["object"] as? [String: Any],
              let intent = object["id"] as? String, (1...255).contains(intent.utf8.count),
              let amount = (object["amount_received"] ?? object["amount"]) as? NSNumber, let currency = object["currency"] as? String
        else { return Response(status: 400, message: "payment_intent.succeeded without an intent, amount or currency") }
        do {
            let outcome = try await payments.applySucceeded(eventID: id, eventType: type, intentID: intent, amountCents: amount.int64Value, currency: currency)
            let metadata: Logger.Metadata = ["payment.intent": "\(intent)", "payment.event": "\(id)", "payment.outcome": "\(outcome)"]
            switch outcome {
            case .orderPaid, .duplicateEvent, .alreadySucceeded:
                logger.info("payment webhook applied", metadata: metadata)
            case .refundQueued:
                logger.notice("payment succeeded for an order no longer pending: refunding it", metadata: metadata)
            case .unknownIntent, .mismatch:
                // Acknowledged: sending it again cannot make it right. Someone must look.
                logger.error("payment webhook does not match a payment of ours", metadata: metadata)
            }
            return Response(status: 200, message: "ok")
        } catch {
            logger.warning("payment webhook could not be applied; the processor will send it again", metadata: ["error": "\(error)"])
            return Response(status: 503, message: "try again")
        }
    }
}
