public import Foundation

extension String: PostgresArrayElement {
    public static var postgresDataType: PostgresDataType { .text }
    public static var postgresArrayDataType: PostgresDataType { .textArray }
    public func encode(into buffer: inout [UInt8]) throws {
        // PostgreSQL text cannot hold NUL; say so instead of letting the server truncate.
        if utf8.contains(0) { throw PostgresError(code: .encoding, message: "text parameter contains a NUL character") }
        buffer.append(contentsOf: utf8)
    }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> String {
        if type == .jsonb {
            // Binary jsonb is a version byte (1) followed by the JSON text.
            try PostgresDecodingFailure.require(bytes.first == 1, "jsonb with unknown version")
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes.dropFirst()), as: UTF8.self)
        }
        guard type.isTextual else { throw PostgresDecodingFailure.typeMismatch(type) }
        return String(decoding: bytes, as: UTF8.self)
    }
    /// Every type's text format is text: `42`, `{1,2}`, an enum's label.
    public static func decode(text: String, type: PostgresDataType) throws -> String { text }
}

extension Data: PostgresArrayElement {
    public static var postgresDataType: PostgresDataType { .bytea }
    public static var postgresArrayDataType: PostgresDataType { .byteaArray }
    public func encode(into buffer: inout [UInt8]) { buffer.append(contentsOf: self) }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> Data {
        guard type == .bytea else { throw PostgresDecodingFailure.typeMismatch(type) }
        return Data(bytes)
    }
    public static func decode(text: String, type: PostgresDataType) throws -> Data {
        guard type == .bytea else { throw PostgresDecodingFailure.typeMismatch(type) }
        return Data(try decodeByteaHex(text))
    }
}

extension UUID: PostgresArrayElement {
    public static var postgresDataType: PostgresDataType { .uuid }
    public static var postgresArrayDataType: PostgresDataType { .uuidArray }
    public func encode(into buffer: inout [UInt8]) {
        withUnsafeBytes(of: uuid) { buffer.append(contentsOf: $0) }
    }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> UUID {
        guard type == .uuid else { throw PostgresDecodingFailure.typeMismatch(type) }
        try PostgresDecodingFailure.require(bytes.count == 16, "uuid of \(bytes.count) bytes")
        var raw: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &raw) { $0.copyMemory(from: bytes) }
        return UUID(uuid: raw)
    }
    public static func decode(text: String, type: PostgresDataType) throws -> UUID {
        guard type == .uuid else { throw PostgresDecodingFailure.typeMismatch(type) }
        guard let value = UUID(uuidString: text) else { throw PostgresDecodingFailure.invalidBytes("uuid text of \(text.utf8.count) bytes") }
        return value
    }
}

/// timestamptz is microseconds since 2000-01-01 00:00 UTC; `date` is days since then.
/// `infinity` and `-infinity` read as `Date.distantFuture` and `Date.distantPast`.
extension Date: PostgresArrayElement {
    static let postgresEpoch: TimeInterval = 946_684_800  // 2000-01-01 in Unix time

    public static var postgresDataType: PostgresDataType { .timestamptz }
    public static var postgresArrayDataType: PostgresDataType { .timestamptzArray }
    public func encode(into buffer: inout [UInt8]) throws {
        let micros = ((timeIntervalSince1970 - Date.postgresEpoch) * 1_000_000).rounded()
        guard let value = Int64(exactly: micros) else {
            throw PostgresError(code: .encoding, message: "date is outside the range of timestamptz")
        }
        buffer.appendBigEndian(value)
    }
    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> Date {
        switch (type, bytes.count) {
        case (.timestamptz, 8), (.timestamp, 8):
            let micros = bytes.readBigEndian(Int64.self, at: 0)
            if micros == .max { return .distantFuture }
            if micros == .min { return .distantPast }
            // Split to keep microsecond precision that a single Double division would lose.
            let seconds = micros.quotientAndRemainder(dividingBy: 1_000_000)
            return Date(timeIntervalSince1970: postgresEpoch + TimeInterval(seconds.quotient) + TimeInterval(seconds.remainder) / 1_000_000)
        case (.date, 4):
            let days = bytes.readBigEndian(Int32.self, at: 0)
            if days == .max { return .distantFuture }
            if days == .min { return .distantPast }
            return Date(timeIntervalSince1970: postgresEpoch + TimeInterval(days) * 86_400)
        case (.timestamptz, _), (.timestamp, _), (.date, _):
            throw PostgresDecodingFailure.invalidBytes("\(type) of \(bytes.count) bytes")
        default:
            throw PostgresDecodingFailure.typeMismatch(type)
        }
    }
}
