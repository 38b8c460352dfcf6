import NIOCore
import Stockroom

/// PRODUCT.GET's reply written by hand: the hottest reply of the service, and Foundation's
/// JSONEncoder spent more CPU on it than the rest of the request (see docs/BENCHMARKS.md).
/// The output is the same object JSONEncoder writes with snake_case keys, sorted keys and
/// ISO 8601 dates; a test holds the two side by side.
enum ProductJSON {
    /// Room for the whole object unless its text needs escaping: writing it rarely grows
    /// the buffer.
    static func capacity(_ product: Product) -> Int {
        256 + product.name.utf8.count + product.description.utf8.count + product.sku.utf8.count
    }

    /// Appends the object to `buffer`.
    static func write(_ product: Product, to out: inout ByteBuffer) {
        out.writeStaticString("{\"active\":")
        out.writeJSONBool(product.active)
        out.writeStaticString(",\"created_at\":")
        out.writeJSONTimestamp(product.createdAt)
        out.writeStaticString(",\"currency\":")
        out.writeJSONString(product.currency)
        out.writeStaticString(",\"description\":")
        out.writeJSONString(product.description)
        out.writeStaticString(",\"id\":")
        out.writeJSONInteger(product.id)
        out.writeStaticString(",\"name\":")
        out.writeJSONString(product.name)
        out.writeStaticString(",\"price_cents\":")
        out.writeJSONInteger(product.priceCents)
        out.writeStaticString(",\"sku\":")
        out.writeJSONString(product.sku)
        out.writeStaticString(",\"stock\":")
        out.writeJSONInteger(product.stock)
        out.writeStaticString(",\"updated_at\":")
        out.writeJSONTimestamp(product.updatedAt)
        out.writeStaticString("}")
    }
}
