internal import Foundation

extension PostgresRow {
    /// How a `Decodable` property name finds its column.
    public enum KeyStrategy: Sendable {
        /// `createdAt` reads the column `created_at`; a column named exactly `createdAt` wins.
        case convertToSnakeCase
        /// Property names are column names.
        case useKeys
    }

    /// Decodes the whole row into `type`, a column per property. Properties whose type is
    /// `PostgresDecodable` read the column directly; any other `Decodable` property reads a
    /// json or jsonb column.
    public func decode<T: Decodable>(_ type: T.Type, keyStrategy: KeyStrategy = .convertToSnakeCase) throws -> T {
        do {
            return try T(from: RowDecoder(row: self, keyStrategy: keyStrategy))
        } catch let error as PostgresError {
            throw error
        } catch {
            throw PostgresError(code: .decoding, message: "cannot decode a row as \(T.self): \(error)")
        }
    }
}

private struct RowDecoder: Decoder {
    let row: PostgresRow
    let keyStrategy: PostgresRow.KeyStrategy
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(RowContainer<Key>(row: row, keyStrategy: keyStrategy))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        throw PostgresError(code: .decoding, message: "a row decodes into a keyed type (a struct), not a list")
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        throw PostgresError(code: .decoding, message: "a row decodes into a keyed type (a struct), not a single value")
    }
}

private struct RowContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let row: PostgresRow
    let keyStrategy: PostgresRow.KeyStrategy
    var codingPath: [any CodingKey] { [] }
    var allKeys: [Key] { row.columns.compactMap { Key(stringValue: $0) } }

    func column(_ key: Key) -> Int? {
        let snakeCase = keyStrategy == .convertToSnakeCase
        return row.handle.column(forKey: key.stringValue, snakeCase: snakeCase) {
            if let exact = row.columns.firstIndex(of: key.stringValue) { return exact }
            guard snakeCase else { return nil }
            return row.columns.firstIndex(of: Self.snakeCase(key.stringValue))
        }
    }

    func require(_ key: Key) throws -> Int {
        guard let column = column(key) else {
            throw PostgresError(code: .decoding, message: "no column for property \"\(key.stringValue)\" (columns: \(row.columns.joined(separator: ", ")))")
        }
        return column
    }

    static func snakeCase(_ name: String) -> String {
        var result = ""
        for character in name {
            if character.isUppercase {
                if !result.isEmpty { result += "_" }
                result += character.lowercased()
            } else {
                result.append(character)
            }
        }
        return result
    }

    func contains(_ key: Key) -> Bool { column(key) != nil }

    func decodeNil(forKey key: Key) throws -> Bool { try row.isNull(try require(key)) }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let column = try require(key)
        if let decodable = type as? any PostgresDecodable.Type {
            return try row.decode(column: column, as: decodable) as! T
        }
        let dataType = row.handle.columnType(column)
        if try row.isNull(column) {
            throw row.decodingError(.unexpectedNull, column: column, dataType: dataType, swiftType: T.self)
        }
        // Structures come from a JSON column; anything else that decodes from a single
        // value (a String- or Int-backed enum, say) decodes from the column itself.
        if dataType == .json || dataType == .jsonb {
            return try row.decode(column: column, as: JSONColumn<T>.self).value
        }
        return try T(from: ColumnDecoder(row: row, column: column))
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        throw PostgresError(code: .decoding, message: "property \"\(key.stringValue)\": nested containers are read from json columns only")
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        throw PostgresError(code: .decoding, message: "property \"\(key.stringValue)\": nested containers are read from json columns only")
    }

    func superDecoder() throws -> any Decoder { RowDecoder(row: row, keyStrategy: keyStrategy) }
    func superDecoder(forKey key: Key) throws -> any Decoder { RowDecoder(row: row, keyStrategy: keyStrategy) }
}

/// Reads a json/jsonb column into any `Decodable`, for row decoding.
private struct JSONColumn<Value: Decodable>: PostgresDecodable, @unchecked Sendable {
    let value: Value
    static func decode(from bytes: UnsafeRawBufferPointer, type: PostgresDataType) throws -> Self {
        Self(value: try decodeJSON(Value.self, from: bytes, type: type))
    }
    static func decode(text: String, type: PostgresDataType) throws -> Self {
        Self(value: try decodeJSON(Value.self, text: text, type: type))
    }
}

/// Decodes a single-value `Decodable` (such as `enum Role: String`) from one column.
private struct ColumnDecoder: Decoder, SingleValueDecodingContainer {
    let row: PostgresRow
    let column: Int
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        throw PostgresError(code: .decoding, message: "column \"\(row.columns[column])\": a structure is read from a json or jsonb column")
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        throw PostgresError(code: .decoding, message: "column \"\(row.columns[column])\": a list is read from an array or json column")
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

    /// `decodeNil()` cannot throw; a row out of range answers "not NULL" so that the
    /// decode that follows throws the reason. (The keyed container checked it already.)
    func decodeNil() -> Bool { (try? row.isNull(column)) ?? false }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        guard let decodable = type as? any PostgresDecodable.Type else {
            throw PostgresError(code: .decoding, message: "column \"\(row.columns[column])\": \(T.self) cannot be read from a column")
        }
        let value = try row.decode(column: column, as: decodable)
        guard let typed = value as? T else {
            throw PostgresError(code: .decoding, message: "column \"\(row.columns[column])\": cannot read \(T.self)")
        }
        return typed
    }
}
