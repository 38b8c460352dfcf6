public import Foundation

/// Work the outbox hands to the outside world for one order: a refund to ask of the
/// payment processor, an e-mail to send. Written in the transaction of the change that
/// calls for it (migration 0010's trigger on order_status_history, or the payment
/// webhook), so it exists exactly when the change committed; at most one per kind and
/// order.
public struct Job: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable, Encodable {
        /// A paid order was cancelled: `POST /v1/refunds` for its payment.
        case refund = "payment.refund"
        /// An order was paid: the customer's confirmation.
        case orderConfirmation = "mail.order_confirmation"
        /// An order shipped: the customer's shipping notice.
        case shippingNotice = "mail.shipping_notice"
    }

    public var id: Int64
    public var kind: Kind
    public var orderID: Int64
    /// Attempts made before this one.
    public var attempts: Int
    /// Stable across attempts: the Idempotency-Key of a refund, the Message-ID's unique
    /// part of an e-mail, so a retry after a lost answer is not acted on twice.
    public var idempotencyKey: String
    public var createdAt: Date

    public init(id: Int64, kind: Kind, orderID: Int64, attempts: Int, idempotencyKey: String, createdAt: Date) {
        self.id = id
        self.kind = kind
        self.orderID = orderID
        self.attempts = attempts
        self.idempotencyKey = idempotencyKey
        self.createdAt = createdAt
    }
}

/// A job as an admin sees it (`JOB.LIST`, `JOB.RETRY`): where it stands and how its last
/// attempt went.
public struct JobRecord: Sendable, Equatable, Encodable {
    public var id: Int64
    public var kind: Job.Kind
    public var orderID: Int64
    public var state: JobState
    /// Attempts made since it was written, or since it was last retried by hand.
    public var attempts: Int
    /// When it is tried next, while pending.
    public var nextAttemptAt: Date?
    public var lastError: String?
    public var createdAt: Date
    /// When it became done or dead.
    public var finishedAt: Date?

    enum CodingKeys: String, CodingKey { case id, kind, orderId, state, attempts, nextAttemptAt, lastError, createdAt, finishedAt }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(kind, forKey: .kind)
        try container.encode(orderID, forKey: .orderId)
        try container.encode(state, forKey: .state)
        try container.encode(attempts, forKey: .attempts)
        try container.encode(nextAttemptAt, forKey: .nextAttemptAt)  // null, not absent
        try container.encode(lastError, forKey: .lastError)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(finishedAt, forKey: .finishedAt)
    }
}

/// How one attempt at a job ended.
public enum JobOutcome: Sendable, Equatable {
    case done
    /// Worth trying again (a 4xx SMTP reply, a 5xx or 429 from the processor, no answer):
    /// on the retry schedule, then dead.
    case retry(error: String)
    /// Trying again cannot help (a 5xx SMTP reply, a 4xx from the processor): dead now.
    case failed(error: String)
}

/// Performs jobs of some kinds. `perform` must not throw: every failure is an outcome,
/// and its message is recorded, so it must not contain secrets (keys, passwords).
public protocol JobHandler: Sendable {
    var kinds: Set<Job.Kind> { get }
    func perform(_ job: Job) async -> JobOutcome
}
