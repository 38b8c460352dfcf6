import NIOCore
import Stockroom

/// An order's reply written by hand, for the same reason as `ProductJSON`: every order
/// command answers with the whole order, and JSONEncoder cost an eighth of the server's
/// CPU under `stockroom bench orders`. Same output as `JSONPayload.encode(order)` (sorted
/// snake_case keys, absent nils, ISO 8601 times); a test holds the two side by side.
enum OrderJSON {
    static func encode(_ order: Order) -> String {
        var out = ByteBufferAllocator().buffer(capacity: 320 + order.lines.count * 160 + order.history.count * 80)
        out.writeStaticString("{\"created_at\":")
        out.writeJSONTimestamp(order.createdAt)
        out.writeStaticString(",\"currency\":")
        out.writeJSONString(order.currency)
        out.writeStaticString(",\"history\":[")
        for (index, change) in order.history.enumerated() {
            if index > 0 { out.writeStaticString(",") }
            out.writeStaticString("{\"changed_at\":")
            out.writeJSONTimestamp(change.changedAt)
            if let changedBy = change.changedBy {
                out.writeStaticString(",\"changed_by\":")
                out.writeJSONInteger(changedBy)
            }
            out.writeStaticString(",\"status\":")
            out.writeJSONString(change.status.rawValue)
            out.writeStaticString("}")
        }
        out.writeStaticString("],\"id\":")
        out.writeJSONInteger(order.id)
        if let key = order.idempotencyKey {
            out.writeStaticString(",\"idempotency_key\":")
            out.writeJSONString(key)
        }
        out.writeStaticString(",\"lines\":[")
        for (index, line) in order.lines.enumerated() {
            if index > 0 { out.writeStaticString(",") }
            out.writeStaticString("{\"line_total_cents\":")
            out.writeJSONInteger(line.lineTotalCents)
            out.writeStaticString(",\"name\":")
            out.writeJSONString(line.name)
            out.writeStaticString(",\"product_id\":")
            out.writeJSONInteger(line.productID)
            out.writeStaticString(",\"quantity\":")
            out.writeJSONInteger(line.quantity)
            out.writeStaticString(",\"sku\":")
            out.writeJSONString(line.sku)
            out.writeStaticString(",\"unit_price_cents\":")
            out.writeJSONInteger(line.unitPriceCents)
            out.writeStaticString("}")
        }
        out.writeStaticString("],\"status\":")
        out.writeJSONString(order.status.rawValue)
        out.writeStaticString(",\"subtotal_cents\":")
        out.writeJSONInteger(order.subtotalCents)
        out.writeStaticString(",\"total_cents\":")
        out.writeJSONInteger(order.totalCents)
        out.writeStaticString(",\"updated_at\":")
        out.writeJSONTimestamp(order.updatedAt)
        out.writeStaticString(",\"user_id\":")
        out.writeJSONInteger(order.userID)
        out.writeStaticString("}")
        return String(buffer: out)
    }
}
