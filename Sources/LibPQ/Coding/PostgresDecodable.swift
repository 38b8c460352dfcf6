/// A Swift value that can be read from a result column in PostgreSQL's binary format.
public protocol PostgresDecodable: Sendable {
    /// Decodes a non-NULL value of server type `type`. Throw `PostgresDecodingFailure`
    /// when the type or bytes do not fit; the row adds the column's name to the error.
    static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> Self
    /// The value for SQL NULL. Throws by default: only `Optional` accepts NULL.
    static func decodeNull() throws -> Self
}

extension PostgresDecodable {
    public static func decodeNull() throws -> Self {
        throw PostgresDecodingFailure.unexpectedNull
    }
}

/// Why a value could not be decoded; turned into a `PostgresError` naming the column.
public enum PostgresDecodingFailure: Error, Sendable {
    case typeMismatch(PostgresDataType)
    case unexpectedNull
    case invalidBytes(String)

    static func require(_ condition: Bool, _ what: @autoclosure () -> String) throws {
        if !condition { throw PostgresDecodingFailure.invalidBytes(what()) }
    }
}
