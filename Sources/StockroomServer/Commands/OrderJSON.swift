import NIOCore
import Stockroom

/// An order's reply written by hand, for the same reason as `ProductJSON`: every order
/// command answers with the whole order, and JSONEncoder cost an eighth of the server's
/// CPU under `stockroom bench orders`. Same output as `JSONPayload.encode(order)` (sorted
/// snake_case keys, absent nils, ISO 8601 times); a test holds the two side by side.
enum OrderJSON {
    /// The most `encode` writes: keys, punctuation, numbers and times at their widest,
    /// and the escaped text.
    static func maxLength(_ order: Order) -> Int {
        let integer = JSONWriter.maxIntegerLength, timestamp = JSONWriter.maxTimestampLength
        var length = 160 + 5 * integer + 2 * timestamp + JSONWriter.length(of: order.currency) + JSONWriter.length(of: order.status.rawValue)
        if let key = order.idempotencyKey { length += 24 + JSONWriter.length(of: key) }
        for line in order.lines {
            length += 96 + 4 * integer + JSONWriter.length(of: line.name) + JSONWriter.length(of: line.sku)
        }
        for change in order.history {
            length += 48 + integer + timestamp + JSONWriter.length(of: change.status.rawValue)
        }
        return length
    }

    static func encode(_ order: Order) -> String {
        var out = ByteBufferAllocator().buffer(capacity: 0)
        out.writeJSON(maxLength: maxLength(order)) { json in
            json.raw("{\"created_at\":")
            json.timestamp(order.createdAt)
            json.raw(",\"currency\":")
            json.string(order.currency)
            json.raw(",\"history\":[")
            for (index, change) in order.history.enumerated() {
                if index > 0 { json.raw(",") }
                json.raw("{\"changed_at\":")
                json.timestamp(change.changedAt)
                if let changedBy = change.changedBy {
                    json.raw(",\"changed_by\":")
                    json.integer(changedBy)
                }
                json.raw(",\"status\":")
                json.string(change.status.rawValue)
                json.raw("}")
            }
            json.raw("],\"id\":")
            json.integer(order.id)
            if let key = order.idempotencyKey {
                json.raw(",\"idempotency_key\":")
                json.string(key)
            }
            json.raw(",\"lines\":[")
            for (index, line) in order.lines.enumerated() {
                if index > 0 { json.raw(",") }
                json.raw("{\"line_total_cents\":")
                json.integer(line.lineTotalCents)
                json.raw(",\"name\":")
                json.string(line.name)
                json.raw(",\"product_id\":")
                json.integer(line.productID)
                json.raw(",\"quantity\":")
                json.integer(line.quantity)
                json.raw(",\"sku\":")
                json.string(line.sku)
                json.raw(",\"unit_price_cents\":")
                json.integer(line.unitPriceCents)
                json.raw("}")
            }
            json.raw("],\"status\":")
            json.string(order.status.rawValue)
            json.raw(",\"subtotal_cents\":")
            json.integer(order.subtotalCents)
            json.raw(",\"total_cents\":")
            json.integer(order.totalCents)
            json.raw(",\"updated_at\":")
            json.timestamp(order.updatedAt)
            json.raw(",\"user_id\":")
            json.integer(order.userID)
            json.raw("}")
        }
        return String(buffer: out)
    }
}
