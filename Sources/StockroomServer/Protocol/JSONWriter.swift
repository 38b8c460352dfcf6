import Foundation
import NIOCore

/// Compact JSON written into memory reserved up front, for the replies written by hand
/// (`ProductJSON`, `OrderJSON`). Keys and punctuation are the caller's, as static
/// strings; values are escaped and formatted the way the server's `JSONEncoder` does
/// (tests hold the two side by side).
///
/// Writing token by token into a `ByteBuffer` paid a capacity check, a uniqueness check
/// and a dynamic exclusivity check on every token: a seventh of PRODUCT.GET's CPU in the
/// service under pipelined load. Here a reply reserves its worst case once
/// (`ByteBuffer.writeJSON`) and each write is a bounds check and a copy.
struct JSONWriter {
    /// The longest integer: `-9223372036854775808`.
    static let maxIntegerLength = 20
    /// The longest timestamp, quotes included: four-digit years take 22, the widest
    /// years a `Date` can hold stay under 40.
    static let maxTimestampLength = 40

    private let base: UnsafeMutableRawPointer
    private let capacity: Int
    private(set) var count = 0

    fileprivate init(_ memory: UnsafeMutableRawBufferPointer) {
        base = memory.baseAddress!
        capacity = memory.count
    }

    /// What `string(text)` writes, quotes included.
    static func length(of text: String) -> Int {
        func escapedLength(_ utf8: some Sequence<UInt8>) -> Int {
            var length = 2
            for byte in utf8 {
                if byte >= 0x20 && byte != 0x22 && byte != 0x5C {
                    length += 1
                } else {
                    switch byte {
                    case 0x22, 0x5C, 0x0A, 0x0D, 0x09, 0x08, 0x0C: length += 2
                    default: length += 6
                    }
                }
            }
            return length
        }
        // Native strings are contiguous UTF-8: a tight loop over raw bytes, not the view.
        return text.utf8.withContiguousStorageIfAvailable(escapedLength) ?? escapedLength(text.utf8)
    }

    mutating func raw(_ text: StaticString) {
        bytes(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func bool(_ value: Bool) {
        raw(value ? "true" : "false")
    }

    mutating func integer<T: FixedWidthInteger>(_ value: T) {
        // Written backwards into a stack buffer.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.maxIntegerLength + 1) { digits in
            let end = digits.count
            var magnitude = value.magnitude
            var start = end
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
            } while magnitude != 0
            if value < 0 {
                start -= 1
                digits[start] = UInt8(ascii: "-")
            }
            bytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: digits[start..<end])))
        }
    }

    /// A JSON string: quotes, backslashes and control characters escaped; everything
    /// else, '/' and non-ASCII included, as is.
    mutating func string(_ text: String) {
        raw("\"")
        var text = text
        text.withUTF8 { utf8 in
            // Every byte to escape is ASCII, and UTF-8 never uses ASCII bytes inside a
            // multi-byte character, so a byte scan decides exactly.
            var plainStart = 0
            for index in utf8.indices {
                let byte = utf8[index]
                guard byte == 0x22 || byte == 0x5C || byte < 0x20 else { continue }
                bytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: utf8[plainStart..<index])))
                switch byte {
                case 0x22: raw("\\\"")
                case 0x5C: raw("\\\\")
                case 0x0A: raw("\\n")
                case 0x0D: raw("\\r")
                case 0x09: raw("\\t")
                case 0x08: raw("\\b")
                case 0x0C: raw("\\f")
                default:
                    func hex(_ nibble: UInt8) -> UInt8 { nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10 }
                    raw("\\u00")
                    self.byte(hex(byte >> 4))
                    self.byte(hex(byte & 0x0F))
                }
                plainStart = index + 1
            }
            bytes(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: utf8[plainStart...])))
        }
        raw("\"")
    }

    /// `"2026-11-25T08:24:15Z"`: whole seconds in UTC, as JSONEncoder's `.iso8601` writes.
    mutating func timestamp(_ date: Date) {
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
        raw("\"")
        defer { raw("\"") }
        func two(_ value: Int64) {
            byte(UInt8(ascii: "0") + UInt8(value / 10))
            byte(UInt8(ascii: "0") + UInt8(value % 10))
        }
        if (0...9999).contains(year) {
            two(year / 100)
            two(year % 100)
        } else {
            // Outside four-digit years, as ISO8601DateFormatter writes them.
            var yearText = String(year)
            for _ in 0..<max(0, 4 - yearText.utf8.count) { raw("0") }
            yearText.withUTF8 { bytes(UnsafeRawBufferPointer($0)) }
        }
        raw("-"); two(month); raw("-"); two(day)
        raw("T"); two(secondOfDay / 3600); raw(":"); two(secondOfDay / 60 % 60); raw(":"); two(secondOfDay % 60)
        raw("Z")
    }

    private mutating func byte(_ value: UInt8) {
        precondition(count < capacity, "JSON longer than reserved")
        base.storeBytes(of: value, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    private mutating func bytes(_ source: UnsafeRawBufferPointer) {
        guard let address = source.baseAddress, !source.isEmpty else { return }
        precondition(count + source.count <= capacity, "JSON longer than reserved")
        (base + count).copyMemory(from: address, byteCount: source.count)
        count += source.count
    }
}

extension ByteBuffer {
    /// Appends what `body` writes, reserving `maxLength` bytes for it first. Writing more
    /// than `maxLength` is a programming error and traps.
    mutating func writeJSON(maxLength: Int, _ body: (inout JSONWriter) -> Void) {
        writeWithUnsafeMutableBytes(minimumWritableBytes: maxLength) { memory in
            var writer = JSONWriter(UnsafeMutableRawBufferPointer(rebasing: memory[..<maxLength]))
            body(&writer)
            return writer.count
        }
    }
}
