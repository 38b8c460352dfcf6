import Foundation
import NIOCore

/// Compact JSON values written straight into a `ByteBuffer`, for the replies written by
/// hand (`ProductJSON`, `OrderJSON`): no intermediate `String`, no copy into the reply.
/// Keys and punctuation are the caller's, as static strings; values are escaped and
/// formatted the way the server's `JSONEncoder` does (tests hold the two side by side).
extension ByteBuffer {
    mutating func writeJSONBool(_ value: Bool) {
        writeStaticString(value ? "true" : "false")
    }

    mutating func writeJSONInteger<T: FixedWidthInteger>(_ value: T) {
        // At most 20 digits and a sign; written backwards into a stack buffer.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 21) { digits in
            var magnitude = value.magnitude
            var start = 21
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude != 0
            if value < 0 {
                start -= 1
                digits[start] = UInt8(ascii: "-")
            }
            writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: digits[start..<21])))
        }
    }

    /// A JSON string: quotes, backslashes and control characters escaped; everything
    /// else, '/' and non-ASCII included, as is.
    mutating func writeJSONString(_ text: String) {
        writeStaticString("\"")
        var text = text
        text.withUTF8 { bytes in
            // Every byte to escape is ASCII, and UTF-8 never uses ASCII bytes inside a
            // multi-byte character, so a byte scan decides exactly.
            var plainStart = 0
            for index in bytes.indices {
                let byte = bytes[index]
                guard byte == 0x22 || byte == 0x5C || byte < 0x20 else { continue }
                writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[plainStart..<index])))
                switch byte {
                case 0x22: writeStaticString("\\\"")
                case 0x5C: writeStaticString("\\\\")
                case 0x0A: writeStaticString("\\n")
                case 0x0D: writeStaticString("\\r")
                case 0x09: writeStaticString("\\t")
                case 0x08: writeStaticString("\\b")
                case 0x0C: writeStaticString("\\f")
                default:
                    func hex(_ nibble: UInt8) -> UInt8 { nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10 }
                    writeStaticString("\\u00")
                    writeInteger(hex(byte >> 4))
                    writeInteger(hex(byte & 0x0F))
                }
                plainStart = index + 1
            }
            writeBytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[plainStart...])))
        }
        writeStaticString("\"")
    }

    /// `"2026-11-25T08:24:15Z"`: whole seconds in UTC, as JSONEncoder's `.iso8601` writes.
    mutating func writeJSONTimestamp(_ date: Date) {
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
        writeStaticString("\"")
        defer { writeStaticString("\"") }
        guard (0...9999).contains(year) else {
            // Outside four-digit years, as ISO8601DateFormatter writes them.
            func two(_ value: Int64) {
                if value < 10 { writeStaticString("0") }
                writeJSONInteger(value)
            }
            let yearText = String(year)
            writeString(String(repeating: "0", count: max(0, 4 - yearText.count)) + yearText)
            writeStaticString("-"); two(month); writeStaticString("-"); two(day)
            writeStaticString("T"); two(secondOfDay / 3600); writeStaticString(":")
            two(secondOfDay / 60 % 60); writeStaticString(":"); two(secondOfDay % 60)
            writeStaticString("Z")
            return
        }
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
            writeBytes(UnsafeRawBufferPointer(bytes))
        }
    }
}
