public import Stockroom

/// ORDER.CHECKOUT: a payment for an order through the processor.
///
/// The payment row (with its idempotency key) is committed first, then the processor is
/// asked, then its intent is recorded. A crash or a lost answer in between leaves a row
/// without an intent; the checkout asked again sends the same key, and the processor
/// answers with the intent it made the first time, not a second one. A checkout of an
/// order that has its intent already returns it without asking the processor.
public struct Checkout: Sendable {
    public struct Result: Sendable, Equatable {
        public var orderID: Int64
        public var intentID: String
        /// What the customer's client needs to confirm the payment with the processor.
        public var clientSecret: String
        public var amountCents: Int64
        public var currency: String
    }

    let payments: PaymentRepository
    let processor: PaymentProcessor

    public init(payments: PaymentRepository, processor: PaymentProcessor) {
        self.payments = payments
        self.processor = processor
    }

    public func checkout(orderID: Int64, as principal: Principal) async throws -> Result {
        var payment = try await payments.begin(orderID: orderID, as: principal)
        if payment.intentID == nil || payment.clientSecret == nil {
            let intent: PaymentProcessor.Intent
            do {
                intent = try await processor.createIntent(
                    amountCents: payment.amountCents, currency: payment.currency, orderID: payment.orderID,
                    idempotencyKey: payment.idempotencyKey)
            } catch {
                switch error.kind {
                case .transient: throw StockroomError(.unavailable, "the payment processor is unavailable, try again")
                case .permanent: throw StockroomError(.paymentFailed, error.message)
                }
            }
            payment = try await payments.attach(orderID: payment.orderID, intentID: intent.id, clientSecret: intent.clientSecret)
        }
        return Result(orderID: payment.orderID, intentID: payment.intentID!, clientSecret: payment.clientSecret!, amountCents: payment.amountCents, currency: payment.currency)
    }
}
