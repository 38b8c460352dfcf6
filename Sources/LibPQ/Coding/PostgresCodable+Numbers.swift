extension Bool: PostgresArrayElement {
    public static var postgresDataType: PostgresDataType { .bool }
    public static var postgresArrayDataType: PostgresDataType { .boolArray }
    public func encode(into buffer: inout [UInt8]) { buffer.append(self ? 1 : 0) }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> Bool {
        guard type == .bool else { throw PostgresDecodingFailure.typeMismatch(type) }
        try PostgresDecodingFailure.require(bytes.count == 1, "bool of \(bytes.count) bytes")
        return bytes[0] != 0
    }
}

/// Reads any of int2/int4/int8 and narrows with a range check, so `Int16` can read an
/// `int8` column as long as the value fits.
private func decodeInteger<T: FixedWidthInteger>(_: T.Type, _ bytes: UnsafeRawBufferPointer, _ type: PostgresDataType) throws -> T {
    let wide: Int64
    switch (type, bytes.count) {
    case (.int2, 2): wide = Int64(bytes.readBigEndian(Int16.self, at: 0))
    case (.int4, 4): wide = Int64(bytes.readBigEndian(Int32.self, at: 0))
    case (.int8, 8): wide = bytes.readBigEndian(Int64.self, at: 0)
    case (.oid, 4): wide = Int64(bytes.readBigEndian(UInt32.self, at: 0))
    case (.int2, _), (.int4, _), (.int8, _), (.oid, _):
        throw PostgresDecodingFailure.invalidBytes("\(type) of \(bytes.count) bytes")
    default: throw PostgresDecodingFailure.typeMismatch(type)
    }
    guard let value = T(exactly: wide) else {
        throw PostgresDecodingFailure.invalidBytes("value \(wide) does not fit in \(T.self)")
    }
    return value
}

extension Int16: PostgresArrayElement {
    public static var postgresDataType: PostgresDataType { .int2 }
    public static var postgresArrayDataType: PostgresDataType { .int2Array }
    public func encode(into buffer: inout [UInt8]) { buffer.appendBigEndian(self) }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> Int16 {
        try decodeInteger(Int16.self, bytes, type)
    }
}

extension Int32: PostgresArrayElement {
    public static var postgresDataType: PostgresDataType { .int4 }
    public static var postgresArrayDataType: PostgresDataType { .int4Array }
    public func encode(into buffer: inout [UInt8]) { buffer.appendBigEndian(self) }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> Int32 {
        try decodeInteger(Int32.self, bytes, type)
    }
}

extension Int64: PostgresArrayElement {
    public static var postgresDataType: PostgresDataType { .int8 }
    public static var postgresArrayDataType: PostgresDataType { .int8Array }
    public func encode(into buffer: inout [UInt8]) { buffer.appendBigEndian(self) }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> Int64 {
        try decodeInteger(Int64.self, bytes, type)
    }
}

extension Int: PostgresArrayElement {
    public static var postgresDataType: PostgresDataType { .int8 }
    public static var postgresArrayDataType: PostgresDataType { .int8Array }
    public func encode(into buffer: inout [UInt8]) { buffer.appendBigEndian(Int64(self)) }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> Int {
        try decodeInteger(Int.self, bytes, type)
    }
}

extension Double: PostgresArrayElement {
    public static var postgresDataType: PostgresDataType { .float8 }
    public static var postgresArrayDataType: PostgresDataType { .float8Array }
    public func encode(into buffer: inout [UInt8]) { buffer.appendBigEndian(bitPattern) }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> Double {
        switch (type, bytes.count) {
        case (.float8, 8): return Double(bitPattern: bytes.readBigEndian(UInt64.self, at: 0))
        case (.float4, 4): return Double(Float(bitPattern: bytes.readBigEndian(UInt32.self, at: 0)))
        case (.float8, _), (.float4, _): throw PostgresDecodingFailure.invalidBytes("\(type) of \(bytes.count) bytes")
        default: throw PostgresDecodingFailure.typeMismatch(type)
        }
    }
}

extension Float: PostgresArrayElement {
    public static var postgresDataType: PostgresDataType { .float4 }
    public static var postgresArrayDataType: PostgresDataType { .float4Array }
    public func encode(into buffer: inout [UInt8]) { buffer.appendBigEndian(bitPattern) }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> Float {
        guard type == .float4 else { throw PostgresDecodingFailure.typeMismatch(type) }
        try PostgresDecodingFailure.require(bytes.count == 4, "float4 of \(bytes.count) bytes")
        return Float(bitPattern: bytes.readBigEndian(UInt32.self, at: 0))
    }
}
