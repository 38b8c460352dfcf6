/// A statement and its bound parameters.
///
/// Built by string interpolation, every interpolated value becomes a `$n` placeholder
/// plus a bound parameter — never SQL text:
///
/// ```swift
/// let rows = try await connection.query("SELECT id FROM users WHERE email = \(email)")
/// ```
///
/// SQL text that is not a literal must be spelled visibly: `\(unsafeRaw: fragment)`, or
/// `\(identifier: name)` for a table or column name, which is quoted.
public struct PostgresQuery: Sendable, Hashable, ExpressibleByStringInterpolation {
    public var sql: String
    public var bindings: PostgresBindings

    public init(unsafeSQL sql: String, bindings: PostgresBindings = PostgresBindings()) {
        self.sql = sql
        self.bindings = bindings
    }

    public init(stringLiteral value: String) {
        self.init(unsafeSQL: value)
    }

    public init(stringInterpolation: StringInterpolation) {
        self.init(unsafeSQL: stringInterpolation.sql, bindings: stringInterpolation.bindings)
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var sql: String = ""
        var bindings: PostgresBindings

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
            bindings = PostgresBindings(reservingCapacity: interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        /// Binds `value` as the next parameter.
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value) {
            bindings.append(value)
            sql += "$\(bindings.count)"
        }

        /// Binds `value`, or NULL when it is nil.
        public mutating func appendInterpolation<Value: PostgresEncodable>(_ value: Value?) {
            bindings.append(value)
            sql += "$\(bindings.count)"
        }

        /// Binds `value` as `jsonb`.
        public mutating func appendInterpolation<Value: Codable & Sendable>(json value: Value) {
            appendInterpolation(PostgresJSON(value))
        }

        /// Inserts `identifier` as a double-quoted SQL identifier (a table or column name).
        public mutating func appendInterpolation(identifier: String) {
            sql += PostgresQuery.quoteIdentifier(identifier)
        }

        /// Inserts `sql` verbatim. Never pass it anything derived from user input.
        public mutating func appendInterpolation(unsafeRaw sql: String) {
            self.sql += sql
        }
    }
}

extension PostgresQuery {
    /// Quotes an SQL identifier: `ab"c` becomes `"ab""c"`.
    public static func quoteIdentifier(_ identifier: String) -> String {
        "\"" + identifier.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
    }
}

extension PostgresQuery {
    /// Appends another query's SQL and bindings, renumbering its placeholders.
    ///
    /// Placeholders are renumbered textually (`$1` → `$n+1`), so `other` must not hold
    /// `$` followed by digits outside placeholders (as in a dollar-quoted `$1$` tag).
    public mutating func append(_ other: PostgresQuery) {
        let offset = bindings.count
        var renumbered = ""
        var scalars = other.sql.unicodeScalars[...]
        while let scalar = scalars.first {
            scalars = scalars.dropFirst()
            guard scalar == "$", let next = scalars.first, ("0"..."9").contains(next) else {
                renumbered.unicodeScalars.append(scalar)
                continue
            }
            let digits = scalars.prefix { ("0"..."9").contains($0) }
            scalars = scalars.dropFirst(digits.count)
            renumbered += "$\(Int(String(String.UnicodeScalarView(digits)))! + offset)"
        }
        sql += renumbered
        bindings.append(contentsOf: other.bindings)
    }
}
