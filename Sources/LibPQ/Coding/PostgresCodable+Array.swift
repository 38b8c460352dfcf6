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
