import Foundation
import Stockroom

/// PRODUCT.GET's reply written by hand: the hottest reply of the service, and Foundation's
/// JSONEncoder spent more CPU on it than the rest of the request (see docs/BENCHMARKS.md).
/// The output is the same object JSONEncoder writes with snake_case keys, sorted keys and
/// ISO 8601 dates; a test holds the two side by side.
enum ProductJSON {
    static func encode(_ product: Product) -> String {
        var out = "{\"active\":"
        out.reserveCapacity(256 + product.description.utf8.count)
        out += product.active ? "true" : "false"
        out += ",\"created_at\":\""
        appendTimestamp(product.createdAt, to: &out)
        out += "\",\"currency\":"
        appendQuoted(product.currency, to: &out)
        out += ",\"description\":"
        appendQuoted(product.description, to: &out)
        out += ",\"id\":"
        out += String(product.id)
        out += ",\"name\":"
        appendQuoted(product.name, to: &out)
        out += ",\"price_cents\":"
        out += String(product.priceCents)
        out += ",\"sku\":"
        appendQuoted(product.sku, to: &out)
        out += ",\"stock\":"
        out += String(product.stock)
        out += ",\"updated_at\":\""
        appendTimestamp(product.updatedAt, to: &out)
        out += "\"}"
        return out
    }

    /// A JSON string: quotes, backslashes and control characters escaped; everything else,
    /// '/' included, as is.
    static func appendQuoted(_ text: String, to out: inout String) {
        out += "\""
        // Most text needs no escaping. Every byte to escape is ASCII, and UTF-8 never uses
        // ASCII bytes inside a multi-byte character, so a byte scan decides exactly.
        var bytes = text
        if !bytes.withUTF8({ $0.contains { $0 == 0x22 || $0 == 0x5C || $0 < 0x20 } }) {
            out += text
            out += "\""
            return
        }
        var plainStart = text.unicodeScalars.startIndex
        var index = plainStart
        let scalars = text.unicodeScalars
        while index != scalars.endIndex {
            let scalar = scalars[index]
            if scalar == "\"" || scalar == "\\" || scalar.value < 0x20 {
                out.unicodeScalars.append(contentsOf: scalars[plainStart..<index])
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case "\u{08}": out += "\\b"
                case "\u{0C}": out += "\\f"
                default:
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                }
                plainStart = scalars.index(after: index)
            }
            index = scalars.index(after: index)
        }
        out.unicodeScalars.append(contentsOf: scalars[plainStart..<scalars.endIndex])
        out += "\""
    }

    /// `2026-11-25T08:24:15Z`: whole seconds in UTC, as JSONEncoder's `.iso8601` writes.
    static func appendTimestamp(_ date: Date, to out: inout String) {
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 { secondOfDay += 86_400; days -= 1 }
        // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        guard (0...9999).contains(year) else {
            func two(_ value: Int64) { if value < 10 { out += "0" }; out += String(value) }
            let yearText = String(year)
            out += String(repeating: "0", count: max(0, 4 - yearText.count)) + yearText
            out += "-"; two(month); out += "-"; two(day)
            out += "T"; two(secondOfDay / 3600); out += ":"; two(secondOfDay / 60 % 60); out += ":"; two(secondOfDay % 60)
            out += "Z"
            return
        }
        // Written into a stack buffer and appended as two strings of ten bytes: small
        // strings live inline, so a timestamp costs no allocation.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { bytes in
            func put(_ value: Int64, width: Int, at end: Int) {
                var value = value
                for place in stride(from: end - 1, through: end - width, by: -1) {
                    bytes[place] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
            }
            put(year, width: 4, at: 4); bytes[4] = UInt8(ascii: "-")
            put(month, width: 2, at: 7); bytes[7] = UInt8(ascii: "-")
            put(day, width: 2, at: 10)
            bytes[10] = UInt8(ascii: "T")
            put(secondOfDay / 3600, width: 2, at: 13); bytes[13] = UInt8(ascii: ":")
            put(secondOfDay / 60 % 60, width: 2, at: 16); bytes[16] = UInt8(ascii: ":")
            put(secondOfDay % 60, width: 2, at: 19); bytes[19] = UInt8(ascii: "Z")
            out += String(decoding: UnsafeBufferPointer(rebasing: bytes[0..<10]), as: UTF8.self)
            out += String(decoding: UnsafeBufferPointer(rebasing: bytes[10..<20]), as: UTF8.self)
        }
    }
}
