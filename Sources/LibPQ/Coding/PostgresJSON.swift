internal import Foundation

/// A `Codable` value stored as `jsonb`. Bind it with `\(PostgresJSON(value))` or
/// `\(json: value)`, read it with `row[…, as: PostgresJSON<T>.self].value`. Row decoding
/// into a `Decodable` type reads json/jsonb columns into nested `Decodable` fields directly.
public struct PostgresJSON<Value: Codable & Sendable>: Sendable, PostgresArrayElement {
    public var value: Value
    public init(_ value: Value) { self.value = value }

    public static var postgresDataType: PostgresDataType { .jsonb }
    public static var postgresArrayDataType: PostgresDataType { .jsonbArray }

    public func encode(into buffer: inout [UInt8]) throws {
        buffer.append(1)  // jsonb binary format version
        do {
            buffer.append(contentsOf: try JSONEncoder().encode(value))
        } catch {
            throw PostgresError(code: .encoding, message: "cannot encode \(Value.self) as JSON")
        }
    }

    public static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> Self {
        Self(try decodeJSON(Value.self, from: bytes, type: type))
    }
    public static func decode(text: String, type: PostgresDataType) throws -> Self {
        Self(try decodeJSON(Value.self, text: text, type: type))
    }
}

func decodeJSON<T: Decodable>(_: T.Type, from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> T {
    var body = bytes
    switch type {
    case .jsonb:
        try PostgresDecodingFailure.require(bytes.first == 1, "jsonb with unknown version")
        body = UnsafeRawBufferPointer(rebasing: bytes.dropFirst())
    case .json: break
    default: throw PostgresDecodingFailure.typeMismatch(type)
    }
    return try decodeJSON(T.self, data: Data(body))
}

/// json and jsonb alike print as plain JSON text (jsonb's version byte is binary only).
func decodeJSON<T: Decodable>(_: T.Type, text: String, type: PostgresDataType) throws -> T {
    guard type == .json || type == .jsonb else { throw PostgresDecodingFailure.typeMismatch(type) }
    return try decodeJSON(T.self, data: Data(text.utf8))
}

private func decodeJSON<T: Decodable>(_: T.Type, data: Data) throws -> T {
    do {
        return try JSONDecoder().decode(T.self, from: data)
    } catch {
        throw PostgresDecodingFailure.invalidBytes("JSON does not decode as \(T.self)")
    }
}
