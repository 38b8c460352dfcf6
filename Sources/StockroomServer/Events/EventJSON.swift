import NIOCore
public import Stockroom

/// An event as clients see it — in EVENTS.READ, pub/sub messages and webhooks:
/// `{"created_at","data","id","low_stock_threshold"?,"subject_id","type","user_id"}`,
/// where `data` is the order or product exactly as ORDER.GET or PRODUCT.GET shows it.
/// Sorted keys, like every reply.
enum EventJSON {
    static func encode(_ event: Event) -> String {
        var out = ByteBufferAllocator().buffer(capacity: 512)
        out.writeJSON(maxLength: 64 + JSONWriter.maxTimestampLength) { json in
            json.raw("{\"created_at\":")
            json.timestamp(event.createdAt)
            json.raw(",\"data\":")
        }
        var threshold: Int?
        switch event.subject {
        case .order(let order):
            out.writeString(OrderJSON.encode(order))
        case .product(let product, let lowStockThreshold):
            ProductJSON.write(product, to: &out)
            threshold = lowStockThreshold
        }
        out.writeJSON(maxLength: 96 + 4 * JSONWriter.maxIntegerLength + JSONWriter.length(of: event.type)) { json in
            json.raw(",\"id\":")
            json.integer(event.id)
            if let threshold {
                json.raw(",\"low_stock_threshold\":")
                json.integer(threshold)
            }
            json.raw(",\"subject_id\":")
            json.integer(event.subjectID)
            json.raw(",\"type\":")
            json.string(event.type)
            json.raw(",\"user_id\":")
            if let user = event.userID { json.integer(user) } else { json.raw("null") }
            json.raw("}")
        }
        return String(buffer: out)
    }
}

extension StockroomServer {
    /// An event as clients see it, for delivery outside the service (`stockroom worker`
    /// passes it to `WebhookWorker`).
    public static let eventJSON: @Sendable (Event) -> String = { EventJSON.encode($0) }
}
