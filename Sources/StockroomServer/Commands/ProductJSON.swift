import NIOCore
import Stockroom

/// PRODUCT.GET's reply written by hand: the hottest reply of the service, and Foundation's
/// JSONEncoder spent more CPU on it than the rest of the request (measured 2026-11-25).
/// The output is the same object JSONEncoder writes with snake_case keys, sorted keys and
/// ISO 8601 dates; a test holds the two side by side.
enum ProductJSON {
    /// The most `write` appends: keys, punctuation, three integers, two timestamps and the
    /// escaped text.
    static func maxLength(_ product: Product) -> Int {
        160 + 3 * JSONWriter.maxIntegerLength + 2 * JSONWriter.maxTimestampLength
            + JSONWriter.length(of: product.currency) + JSONWriter.length(of: product.description)
            + JSONWriter.length(of: product.name) + JSONWriter.length(of: product.sku)
    }

    /// Appends the object to `buffer`.
    static func write(_ product: Product, to out: inout ByteBuffer) {
        out.writeJSON(maxLength: maxLength(product)) { json in
            json.raw("{\"active\":")
            json.bool(product.active)
            json.raw(",\"created_at\":")
            json.timestamp(product.createdAt)
            json.raw(",\"currency\":")
            json.string(product.currency)
            json.raw(",\"description\":")
            json.string(product.description)
            json.raw(",\"id\":")
            json.integer(product.id)
            json.raw(",\"name\":")
            json.string(product.name)
            json.raw(",\"price_cents\":")
            json.integer(product.priceCents)
            json.raw(",\"sku\":")
            json.string(product.sku)
            json.raw(",\"stock\":")
            json.integer(product.stock)
            json.raw(",\"updated_at\":")
            json.timestamp(product.updatedAt)
            json.raw("}")
        }
    }
}
