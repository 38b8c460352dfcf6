public import Foundation

public enum OrderStatus: String, Codable, Sendable, CaseIterable {
    case pending, paid, shipped, delivered, cancelled
}

public struct OrderLine: Codable, Sendable, Equatable {
    public var productID: Int64
    /// Snapshots taken when the order was placed; later product changes leave them be.
    public var sku: String
    public var name: String
    public var unitPriceCents: Int64
    public var quantity: Int
    public var lineTotalCents: Int64

    enum CodingKeys: String, CodingKey {
        case productID = "productId", sku, name, unitPriceCents, quantity, lineTotalCents
    }
}

public struct OrderStatusChange: Codable, Sendable, Equatable {
    public var status: OrderStatus
    public var changedAt: Date
    public var changedBy: Int64?
}

public struct Order: Codable, Sendable, Equatable {
    public var id: Int64
    public var userID: Int64
    public var status: OrderStatus
    public var currency: String
    public var subtotalCents: Int64
    public var totalCents: Int64
    public var idempotencyKey: String?
    public var createdAt: Date
    public var updatedAt: Date
    public var lines: [OrderLine]
    public var history: [OrderStatusChange]

    enum CodingKeys: String, CodingKey {
        case id, userID = "userId", status, currency, subtotalCents, totalCents, idempotencyKey, createdAt, updatedAt, lines, history
    }
}

/// What a customer asks for. The same product twice is merged into one line with the
/// summed quantity.
public struct OrderRequest: Codable, Sendable {
    public struct Line: Codable, Sendable {
        public var productID: Int64
        public var quantity: Int

        public init(productID: Int64, quantity: Int) {
            self.productID = productID
            self.quantity = quantity
        }

        enum CodingKeys: String, CodingKey { case productID = "productId", quantity }
    }

    public var lines: [Line]
    public var idempotencyKey: String?

    public init(lines: [Line], idempotencyKey: String? = nil) {
        self.lines = lines
        self.idempotencyKey = idempotencyKey
    }
}
