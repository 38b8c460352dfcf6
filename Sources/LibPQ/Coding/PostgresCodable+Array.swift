/// Arrays travel in PostgreSQL's binary array format (one dimension, lower bound 1),
/// except `[UInt8]`, which is `bytea`.
extension Array: PostgresEncodable where Element: PostgresArrayElement {
    public static var postgresDataType: PostgresDataType {
        Element.self == UInt8.self ? .bytea : Element.postgresArrayDataType
    }

    public func encode(into buffer: inout [UInt8]) throws {
        // Test the element type, not `self as? [UInt8]`: an empty [Int] casts to [UInt8] too.
        if Element.self == UInt8.self {
            buffer.append(contentsOf: self as! [UInt8])
            return
        }
        buffer.appendBigEndian(Int32(isEmpty ? 0 : 1))  // dimensions
        buffer.appendBigEndian(Int32(contains { $0.isPostgresNull } ? 1 : 0))
        buffer.appendBigEndian(Element.postgresDataType.rawValue)
        if isEmpty { return }
        guard let count = Int32(exactly: count) else {
            throw PostgresError(code: .encoding, message: "array has too many elements")
        }
        buffer.appendBigEndian(count)
        buffer.appendBigEndian(Int32(1))  // lower bound
        for element in self {
            if element.isPostgresNull {
                buffer.appendBigEndian(Int32(-1))
                continue
            }
            let lengthAt = buffer.count
            buffer.appendBigEndian(Int32(0))
            try element.encode(into: &buffer)
            guard let length = Int32(exactly: buffer.count - lengthAt - 4) else {
                throw PostgresError(code: .encoding, message: "array element is larger than 2 GiB")
            }
            Swift.withUnsafeBytes(of: length.bigEndian) { buffer.replaceSubrange(lengthAt..<lengthAt + 4, with: $0) }
        }
    }
}

extension Array: PostgresDecodable where Element: PostgresArrayElement {
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> [Element] {
        if Element.self == UInt8.self {
            guard type == .bytea else { throw PostgresDecodingFailure.typeMismatch(type) }
            return [UInt8](bytes) as! [Element]
        }
        try PostgresDecodingFailure.require(bytes.count >= 12, "array header of \(bytes.count) bytes")
        let dimensions = bytes.readBigEndian(Int32.self, at: 0)
        let elementType = PostgresDataType(bytes.readBigEndian(UInt32.self, at: 8))
        if dimensions == 0 { return [] }
        guard dimensions == 1 else {
            throw PostgresDecodingFailure.invalidBytes("\(dimensions)-dimensional array (only one dimension is supported)")
        }
        try PostgresDecodingFailure.require(bytes.count >= 20, "array header of \(bytes.count) bytes")
        let count = Int(bytes.readBigEndian(Int32.self, at: 12))
        var offset = 20
        var result: [Element] = []
        result.reserveCapacity(count)
        for _ in 0..<count {
            try PostgresDecodingFailure.require(offset + 4 <= bytes.count, "truncated array")
            let length = Int(bytes.readBigEndian(Int32.self, at: offset))
            offset += 4
            if length < 0 {
                result.append(try Element.decodeNull())
                continue
            }
            try PostgresDecodingFailure.require(offset + length <= bytes.count, "truncated array")
            result.append(try Element.decode(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + length]), type: elementType))
            offset += length
        }
        return result
    }

    /// Only bytea has a text reader here; an array's text (`{1,2}`, with quoting rules
    /// per element type) fails, unless read as `String`.
    public static func decode(text: String, type: PostgresDataType) throws -> [Element] {
        guard Element.self == UInt8.self else { throw PostgresDecodingFailure.textFormat }
        guard type == .bytea else { throw PostgresDecodingFailure.typeMismatch(type) }
        return try decodeByteaHex(text) as! [Element]
    }
}

/// bytea's text in the default `bytea_output = hex`: `\x` and two hex digits a byte.
func decodeByteaHex(_ text: String) throws -> [UInt8] {
    func nibble(_ digit: UInt8) throws -> UInt8 {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
        default: throw PostgresDecodingFailure.invalidBytes("bytea text with a character that is not a hex digit")
        }
    }
    let digits = text.utf8.dropFirst(2)
    guard text.utf8.starts(with: [UInt8(ascii: "\\"), UInt8(ascii: "x")]) else {
        throw PostgresDecodingFailure.invalidBytes("bytea text not in hex format (bytea_output = escape?); set bytea_output = hex")
    }
    try PostgresDecodingFailure.require(digits.count.isMultiple(of: 2), "bytea hex text with an odd number of digits")
    var bytes: [UInt8] = []
    bytes.reserveCapacity(digits.count / 2)
    var high: UInt8?
    for digit in digits {
        let value = try nibble(digit)
        if let first = high {
            bytes.append(first << 4 | value)
            high = nil
        } else {
            high = value
        }
    }
    return bytes
}

/// PostgreSQL's one-byte `"char"` type; present so that `[UInt8]` can be `bytea`.
extension UInt8: PostgresArrayElement {
    public static var postgresDataType: PostgresDataType { .char }
    public static var postgresArrayDataType: PostgresDataType { PostgresDataType(1002) }
    public func encode(into buffer: inout [UInt8]) { buffer.append(self) }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> UInt8 {
        guard type == .char else { throw PostgresDecodingFailure.typeMismatch(type) }
        return bytes.first ?? 0
    }
}
