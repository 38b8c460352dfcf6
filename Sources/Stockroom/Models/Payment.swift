/// An order's payment through the processor (ORDER.CHECKOUT). Manual payments
/// (ORDER.PAY, admins) have none.
public struct Payment: Sendable, Equatable {
    public enum Status: String, Sendable {
        /// Checkout began; the processor has not said the money arrived.
        case created
        /// The processor said so (its webhook); the order is paid.
        case succeeded
        /// The order was cancelled after it: a refund job is queued.
        case refundPending = "refund_pending"
        case refunded
    }

    public var orderID: Int64
    /// Sent as Idempotency-Key when the intent is created, the same on every try.
    public var idempotencyKey: String
    /// The processor's PaymentIntent id and client secret, once it answered.
    public var intentID: String?
    public var clientSecret: String?
    public var amountCents: Int64
    public var currency: String
    public var status: Status
    public var refundID: String?

    public init(orderID: Int64, idempotencyKey: String, intentID: String?, clientSecret: String?, amountCents: Int64, currency: String, status: Status, refundID: String?) {
        self.orderID = orderID
        self.idempotencyKey = idempotencyKey
        self.intentID = intentID
        self.clientSecret = clientSecret
        self.amountCents = amountCents
        self.currency = currency
        self.status = status
        self.refundID = refundID
    }
}

/// What a processor's "payment succeeded" did, whatever the number of times it came.
public enum PaymentSuccessOutcome: Sendable, Equatable {
    /// The order was pending and is now paid.
    case orderPaid(orderID: Int64)
    /// This processor event was applied before: nothing changed.
    case duplicateEvent
    /// The payment had succeeded before (another event said so): nothing changed.
    case alreadySucceeded(orderID: Int64)
    /// The order was no longer pending (cancelled, or paid by hand): the money is sent
    /// back, through a refund job.
    case refundQueued(orderID: Int64)
    /// No payment of ours has this intent.
    case unknownIntent
    /// The amount or currency is not the payment's: nothing changed.
    case mismatch(orderID: Int64)
}
