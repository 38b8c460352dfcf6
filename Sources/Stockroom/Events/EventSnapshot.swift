import Foundation

/// An event's subject as EventRepository reads it (migration 0008): an order rebuilt from
/// its lines and history, or a product's snapshot. JSON with times as epoch seconds,
/// which keep every microsecond PostgreSQL has.
enum EventSnapshot {
    struct OrderSnapshot: Decodable {
        struct Change: Decodable {
            var status: OrderStatus
            var changedAt: Double
            var changedBy: Int64?
        }

        var id: Int64
        var userId: Int64
        var status: OrderStatus
        var currency: String
        var subtotalCents: Int64
        var totalCents: Int64
        var idempotencyKey: String?
        var createdAt: Double
        var updatedAt: Double
        var lines: [OrderLine]
        var history: [Change]

        var order: Order {
            Order(
                id: id, userID: userId, status: status, currency: currency, subtotalCents: subtotalCents,
                totalCents: totalCents, idempotencyKey: idempotencyKey,
                createdAt: Date(timeIntervalSince1970: createdAt), updatedAt: Date(timeIntervalSince1970: updatedAt),
                lines: lines,
                history: history.map { OrderStatusChange(status: $0.status, changedAt: Date(timeIntervalSince1970: $0.changedAt), changedBy: $0.changedBy) }
            )
        }
    }

    struct ProductSnapshot: Decodable {
        var id: Int64
        var sku: String
        var name: String
        var description: String
        var priceCents: Int64
        var currency: String
        var stock: Int
        var active: Bool
        var createdAt: Double
        var updatedAt: Double
        var threshold: Int

        var product: Product {
            Product(
                id: id, sku: sku, name: name, description: description, priceCents: priceCents, currency: currency,
                stock: stock, active: active, createdAt: Date(timeIntervalSince1970: createdAt), updatedAt: Date(timeIntervalSince1970: updatedAt)
            )
        }
    }

    static func subject(type: String, payload: [UInt8]) throws -> Event.Subject {
        let decoder = JSONDecoder()
        if type.hasPrefix("order.") {
            return .order(try decoder.decode(OrderSnapshot.self, from: Data(payload)).order)
        }
        let snapshot = try decoder.decode(ProductSnapshot.self, from: Data(payload))
        return .product(snapshot.product, lowStockThreshold: snapshot.threshold)
    }
}
