public import Foundation

public struct Product: Codable, Sendable, Equatable {
    public var id: Int64
    public var sku: String
    public var name: String
    public var description: String
    /// Price in minor units of `currency` (cents for USD and EUR).
    public var priceCents: Int64
    /// ISO 4217 code, e.g. "EUR".
    public var currency: String
    public var stock: Int
    public var active: Bool
    public var createdAt: Date
    public var updatedAt: Date
}

/// A new product. `stock` defaults to 0.
public struct NewProduct: Codable, Sendable {
    public var sku: String
    public var name: String
    public var description: String?
    public var priceCents: Int64
    public var currency: String
    public var stock: Int?

    public init(sku: String, name: String, description: String? = nil, priceCents: Int64, currency: String, stock: Int? = nil) {
        self.sku = sku
        self.name = name
        self.description = description
        self.priceCents = priceCents
        self.currency = currency
        self.stock = stock
    }
}

/// Changes to a product; nil leaves a field as it is. Stock changes only through
/// restocking and orders.
public struct ProductChanges: Codable, Sendable {
    public var sku: String?
    public var name: String?
    public var description: String?
    public var priceCents: Int64?
    public var currency: String?

    public init(sku: String? = nil, name: String? = nil, description: String? = nil, priceCents: Int64? = nil, currency: String? = nil) {
        self.sku = sku
        self.name = name
        self.description = description
        self.priceCents = priceCents
        self.currency = currency
    }

    var isEmpty: Bool { sku == nil && name == nil && description == nil && priceCents == nil && currency == nil }
}

extension Product {
    /// Checks a sku's format — the rule the database enforces — and returns it, or throws
    /// `INVALID sku: …`. For callers that gather lookups into a shared statement, so one
    /// malformed sku fails only its own request.
    public static func validSKU(_ sku: String) throws -> String {
        try Validate.sku(sku)
    }
}
