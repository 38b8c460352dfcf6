import Stockroom

/// An order's reply written by hand, for the same reason as `ProductJSON`: every order
/// command answers with the whole order, and JSONEncoder cost an eighth of the server's
/// CPU under `stockroom bench orders`. Same output as `JSONPayload.encode(order)` (sorted
/// snake_case keys, absent nils, ISO 8601 times); a test holds the two side by side.
enum OrderJSON {
    static func encode(_ order: Order) -> String {
        var out = "{\"created_at\":\""
        out.reserveCapacity(320 + order.lines.count * 160 + order.history.count * 80)
        ProductJSON.appendTimestamp(order.createdAt, to: &out)
        out += "\",\"currency\":"
        ProductJSON.appendQuoted(order.currency, to: &out)
        out += ",\"history\":["
        for (index, change) in order.history.enumerated() {
            if index > 0 { out += "," }
            out += "{\"changed_at\":\""
            ProductJSON.appendTimestamp(change.changedAt, to: &out)
            out += "\""
            if let changedBy = change.changedBy {
                out += ",\"changed_by\":"
                out += String(changedBy)
            }
            out += ",\"status\":"
            ProductJSON.appendQuoted(change.status.rawValue, to: &out)
            out += "}"
        }
        out += "],\"id\":"
        out += String(order.id)
        if let key = order.idempotencyKey {
            out += ",\"idempotency_key\":"
            ProductJSON.appendQuoted(key, to: &out)
        }
        out += ",\"lines\":["
        for (index, line) in order.lines.enumerated() {
            if index > 0 { out += "," }
            out += "{\"line_total_cents\":"
            out += String(line.lineTotalCents)
            out += ",\"name\":"
            ProductJSON.appendQuoted(line.name, to: &out)
            out += ",\"product_id\":"
            out += String(line.productID)
            out += ",\"quantity\":"
            out += String(line.quantity)
            out += ",\"sku\":"
            ProductJSON.appendQuoted(line.sku, to: &out)
            out += ",\"unit_price_cents\":"
            out += String(line.unitPriceCents)
            out += "}"
        }
        out += "],\"status\":"
        ProductJSON.appendQuoted(order.status.rawValue, to: &out)
        out += ",\"subtotal_cents\":"
        out += String(order.subtotalCents)
        out += ",\"total_cents\":"
        out += String(order.totalCents)
        out += ",\"updated_at\":\""
        ProductJSON.appendTimestamp(order.updatedAt, to: &out)
        out += "\",\"user_id\":"
        out += String(order.userID)
        out += "}"
        return out
    }
}
