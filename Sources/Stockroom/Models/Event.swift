public import Foundation

/// Something other services must hear of, from the outbox (migration 0008): written in
/// the transaction of the change it records, and numbered once it committed, so ids
/// only ever grow in the order events become visible.
public struct Event: Sendable, Equatable {
    /// `order.placed`, `order.paid`, `order.shipped`, `order.delivered`,
    /// `order.cancelled`, `product.low_stock`.
    public var type: String
    public var id: Int64
    public var subjectID: Int64
    /// The customer the event concerns (the order's owner); nil for catalogue events,
    /// which only admins see.
    public var userID: Int64?
    public var createdAt: Date
    /// The subject as it was when the event happened.
    public var subject: Subject

    public enum Subject: Sendable, Equatable {
        case order(Order)
        /// A product, and the threshold its stock fell to or below.
        case product(Product, lowStockThreshold: Int)
    }

    public static let types = [
        "order.placed", "order.paid", "order.shipped", "order.delivered", "order.cancelled", "product.low_stock",
    ]
}
