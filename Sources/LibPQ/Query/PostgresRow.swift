internal import CLibPQ

/// One row of a result: columns by index or by name, or the whole row as a `Decodable`.
///
/// Every read checks that the row and the column exist: libpq answers "NULL" for a row
/// or column past the end, which would read as `nil` instead of failing.
public struct PostgresRow: Sendable {
    let handle: ResultHandle
    /// Unchecked here (`PostgresRows` hands out any position); checked on every read.
    let index: Int

    public var count: Int { handle.columnCount }
    public var columns: [String] { handle.columnNames }

    /// The column at `column` (0-based) as `T`.
    public subscript<T: PostgresDecodable>(column: Int, as type: T.Type = T.self) -> T {
        get throws { try decode(column: column, as: type) }
    }

    /// The column named `name` as `T`. Names match exactly (case-sensitive).
    public subscript<T: PostgresDecodable>(name: String, as type: T.Type = T.self) -> T {
        get throws { try decode(column: try columnIndex(name), as: type) }
    }

    /// True when the column holds SQL NULL. Throws when the result has no such row or column.
    public func isNull(_ column: Int) throws -> Bool {
        try checkPosition(column: column)
        return PQgetisnull(handle.pointer, Int32(index), Int32(column)) == 1
    }

    /// Both bounds are checked before either narrows to libpq's `Int32`.
    func checkPosition(column: Int) throws {
        guard index >= 0 && index < handle.rowCount else {
            throw PostgresError(code: .decoding, message: "row \(index) is out of range (the result has \(handle.rowCount) rows)")
        }
        guard column >= 0 && column < count else {
            throw PostgresError(code: .decoding, message: "no column at index \(column) (the row has \(count))")
        }
    }

    func columnIndex(_ name: String) throws -> Int {
        guard let column = handle.columnNames.firstIndex(of: name) else {
            throw PostgresError(code: .decoding, message: "no column named \"\(name)\" (columns: \(handle.columnNames.joined(separator: ", ")))")
        }
        return column
    }

    func decode<T: PostgresDecodable>(column: Int, as type: T.Type) throws -> T {
        try checkPosition(column: column)
        let (row, field) = (Int32(index), Int32(column))
        let dataType = handle.columnType(column)
        do {
            if PQgetisnull(handle.pointer, row, field) == 1 { return try T.decodeNull() }
            let length = Int(PQgetlength(handle.pointer, row, field))
            let bytes = UnsafeRawBufferPointer(start: PQgetvalue(handle.pointer, row, field), count: length)
            // Text only from simpleQuery: reading its characters as binary would turn
            // `f` into true and `1234` into 825373492 without a word.
            guard PQfformat(handle.pointer, field) == 0 else { return try T.decode(from: bytes, type: dataType) }
            return try T.decode(text: String(decoding: bytes, as: UTF8.self), type: dataType)
        } catch let failure as PostgresDecodingFailure {
            throw decodingError(failure, column: column, dataType: dataType, swiftType: T.self)
        }
    }

    func decodingError(_ failure: PostgresDecodingFailure, column: Int, dataType: PostgresDataType, swiftType: Any.Type) -> PostgresError {
        let name = handle.columnNames[column]
        let reason = switch failure {
        case .typeMismatch(let type) where dataType.isUserDefined || type.isUserDefined:
            "its type (oid \(dataType.rawValue)) is user-defined (an enum, composite, range or extension type such as citext), "
                + "whose binary format LibPQ does not read; cast it to a built-in type in SQL, e.g. `\(Self.sqlName(name))::text`"
        case .typeMismatch: "a \(dataType) column cannot be read as \(swiftType)"
        case .unexpectedNull: "unexpected NULL for non-optional \(swiftType)"
        case .invalidBytes(let what): "cannot read \(dataType) as \(swiftType): \(what)"
        case .textFormat:
            "the \(dataType) column came in text format (from simpleQuery), which \(swiftType) cannot read; "
                + "run the statement through query(), whose results are binary, or read the column as String"
        }
        var error = PostgresError(code: .decoding, message: "column \"\(name)\": \(reason)")
        error.column = name
        error.dataType = dataType.description
        return error
    }

    /// `name` as it would be typed in SQL, for the advice in an error message.
    static func sqlName(_ name: String) -> String {
        let plain = name.first.map { $0 == "_" || ("a"..."z").contains($0) } ?? false
            && name.allSatisfy { $0 == "_" || ("a"..."z").contains($0) || ("0"..."9").contains($0) }
        return plain ? name : PostgresQuery.quoteIdentifier(name)
    }
}
