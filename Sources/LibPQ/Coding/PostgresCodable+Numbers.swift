extension Bool: PostgresArrayElement {
    public static var postgresDataType: PostgresDataType { .bool }
    public static var postgresArrayDataType: PostgresDataType { .boolArray }
    public func encode(into buffer: inout [UInt8]) { buffer.append(self ? 1 : 0) }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> Bool {
        guard type == .bool else { throw PostgresDecodingFailure.typeMismatch(type) }
        try PostgresDecodingFailure.require(bytes.count == 1, "bool of \(bytes.count) bytes")
        return bytes[0] != 0
    }
    public static func decode(text: String, type: PostgresDataType) throws -> Bool {
        guard type == .bool else { throw PostgresDecodingFailure.typeMismatch(type) }
        switch text {
        case "t": return true
        case "f": return false
        default: throw PostgresDecodingFailure.invalidBytes("bool text of \(text.utf8.count) bytes")
        }
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
    return try narrow(wide, to: T.self)
}

/// The text-format twin of the above: every integer type's text fits in `Int64` (oid's
/// too, being unsigned 32-bit).
private func decodeInteger<T: FixedWidthInteger>(_: T.Type, text: String, _ type: PostgresDataType) throws -> T {
    switch type {
    case .int2, .int4, .int8, .oid: break
    default: throw PostgresDecodingFailure.typeMismatch(type)
    }
    guard let wide = Int64(text) else { throw PostgresDecodingFailure.invalidBytes("\(type) text that is not an integer") }
    return try narrow(wide, to: T.self)
}

private func narrow<T: FixedWidthInteger>(_ wide: Int64, to _: T.Type) throws -> T {
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
    public static func decode(text: String, type: PostgresDataType) throws -> Int16 {
        try decodeInteger(Int16.self, text: text, type)
    }
}

extension Int32: PostgresArrayElement {
    public static var postgresDataType: PostgresDataType { .int4 }
    public static var postgresArrayDataType: PostgresDataType { .int4Array }
    public func encode(into buffer: inout [UInt8]) { buffer.appendBigEndian(self) }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> Int32 {
        try decodeInteger(Int32.self, bytes, type)
    }
    public static func decode(text: String, type: PostgresDataType) throws -> Int32 {
        try decodeInteger(Int32.self, text: text, type)
    }
}

extension Int64: PostgresArrayElement {
    public static var postgresDataType: PostgresDataType { .int8 }
    public static var postgresArrayDataType: PostgresDataType { .int8Array }
    public func encode(into buffer: inout [UInt8]) { buffer.appendBigEndian(self) }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> Int64 {
        try decodeInteger(Int64.self, bytes, type)
    }
    public static func decode(text: String, type: PostgresDataType) throws -> Int64 {
        try decodeInteger(Int64.self, text: text, type)
    }
}

extension Int: PostgresArrayElement {
    public static var postgresDataType: PostgresDataType { .int8 }
    public static var postgresArrayDataType: PostgresDataType { .int8Array }
    public func encode(into buffer: inout [UInt8]) { buffer.appendBigEndian(Int64(self)) }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> Int {
        try decodeInteger(Int.self, bytes, type)
    }
    public static func decode(text: String, type: PostgresDataType) throws -> Int {
        try decodeInteger(Int.self, text: text, type)
    }
}

/// `oid`, PostgreSQL's unsigned 32-bit type (the OIDs of tables, types, large objects).
extension UInt32: PostgresArrayElement {
    public static var postgresDataType: PostgresDataType { .oid }
    public static var postgresArrayDataType: PostgresDataType { .oidArray }
    public func encode(into buffer: inout [UInt8]) { buffer.appendBigEndian(self) }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> UInt32 {
        try decodeInteger(UInt32.self, bytes, type)
    }
    public static func decode(text: String, type: PostgresDataType) throws -> UInt32 {
        try decodeInteger(UInt32.self, text: text, type)
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
    public static func decode(text: String, type: PostgresDataType) throws -> Double {
        switch type {
        // Through Float, so that a real reads as the same Double as in binary.
        case .float4: return Double(try Float.decode(text: text, type: type))
        case .float8: return try parseFloat(Double.self, text, type)
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
    public static func decode(text: String, type: PostgresDataType) throws -> Float {
        guard type == .float4 else { throw PostgresDecodingFailure.typeMismatch(type) }
        return try parseFloat(Float.self, text, type)
    }
}

/// The server prints floats exactly (shortest round-trip digits, as extra_float_digits = 1
/// by default asks), and spells the special values its own way.
private func parseFloat<T: BinaryFloatingPoint & LosslessStringConvertible>(_: T.Type, _ text: String, _ type: PostgresDataType) throws -> T {
    switch text {
    case "NaN": return .nan
    case "Infinity": return .infinity
    case "-Infinity": return -.infinity
    default:
        guard let value = T(text) else { throw PostgresDecodingFailure.invalidBytes("\(type) text that is not a number") }
        return value
    }
}
