/// A Swift value that can be bound as a query parameter, in PostgreSQL's binary format.
public protocol PostgresEncodable: Sendable {
    /// The parameter type sent to the server.
    static var postgresDataType: PostgresDataType { get }
    /// Appends the binary representation. Not called when `isPostgresNull` is true.
    func encode(into buffer: inout [UInt8]) throws
    /// True when this value is SQL NULL (only `Optional.none` is).
    var isPostgresNull: Bool { get }
}

extension PostgresEncodable {
    public var isPostgresNull: Bool { false }
}

/// A value that can be an element of a PostgreSQL array parameter or column.
public protocol PostgresArrayElement: PostgresEncodable, PostgresDecodable {
    /// The OID of the array type whose elements are `Self`.
    static var postgresArrayDataType: PostgresDataType { get }
}

extension Optional: PostgresEncodable where Wrapped: PostgresEncodable {
    public static var postgresDataType: PostgresDataType { Wrapped.postgresDataType }
    public var isPostgresNull: Bool { self == nil }
    public func encode(into buffer: inout [UInt8]) throws {
        if let value = self { try value.encode(into: &buffer) }
    }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> Self {
        try Wrapped.decode(from: bytes, type: type)
    }
    public static func decode(text: String, type: PostgresDataType) throws -> Self {
        try Wrapped.decode(text: text, type: type)
    }
    public static func decodeNull() throws -> Self { nil }
}

extension Optional: PostgresArrayElement where Wrapped: PostgresArrayElement {
    public static var postgresArrayDataType: PostgresDataType { Wrapped.postgresArrayDataType }
}

// MARK: - Big-endian helpers shared by the codecs

extension Array where Element == UInt8 {
    @inlinable mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }
}

extension UnsafeRawBufferPointer {
    @inlinable func readBigEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        var value: T = 0
        withUnsafeMutableBytes(of: &value) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: self[offset..<offset + MemoryLayout<T>.size])) }
        return T(bigEndian: value)
    }
}
