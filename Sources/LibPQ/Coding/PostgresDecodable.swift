/// A Swift value that can be read from a result column.
///
/// Columns come in binary format from `query()` and in text format from `simpleQuery`
/// (the simple query protocol has no way to ask for binary). Binary is the fast path and
/// every type reads it; a type that also reads the server's text output implements
/// `decode(text:type:)`, and the others fail loudly on a text column instead of reading
/// its characters as if they were binary.
public protocol PostgresDecodable: Sendable {
    /// Decodes a non-NULL value of server type `type` from its binary format. Throw
    /// `PostgresDecodingFailure` when the type or bytes do not fit; the row adds the
    /// column's name to the error.
    static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> Self
    /// Decodes a non-NULL value of server type `type` from its text format, the type's
    /// output function as psql shows it (`t`, `1234`, `\x01ff`). By default throws
    /// `PostgresDecodingFailure.textFormat`.
    static func decode(text: String, type: PostgresDataType) throws -> Self
    /// The value for SQL NULL. Throws by default: only `Optional` accepts NULL.
    static func decodeNull() throws -> Self
}

extension PostgresDecodable {
    public static func decode(text: String, type: PostgresDataType) throws -> Self {
        throw PostgresDecodingFailure.textFormat
    }

    public static func decodeNull() throws -> Self {
        throw PostgresDecodingFailure.unexpectedNull
    }
}

/// Why a value could not be decoded; turned into a `PostgresError` naming the column.
public enum PostgresDecodingFailure: Error, Sendable {
    case typeMismatch(PostgresDataType)
    case unexpectedNull
    case invalidBytes(String)
    /// The column came in text format and the type reads only the binary one.
    case textFormat

    static func require(_ condition: Bool, _ what: @autoclosure () -> String) throws {
        if !condition { throw PostgresDecodingFailure.invalidBytes(what()) }
    }
}
