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
    do {
        return try JSONDecoder().decode(T.self, from: Data(body))
    } catch {
        throw PostgresDecodingFailure.invalidBytes("JSON does not decode as \(T.self)")
    }
}
