internal import CLibPQ

/// One row of a result: columns by index or by name, or the whole row as a `Decodable`.
public struct PostgresRow: Sendable {
    let handle: ResultHandle
    let index: Int32

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

    /// True when the column holds SQL NULL.
    public func isNull(_ column: Int) -> Bool {
        PQgetisnull(handle.pointer, index, Int32(column)) == 1
    }

    func columnIndex(_ name: String) throws -> Int {
        guard let column = handle.columnNames.firstIndex(of: name) else {
            throw PostgresError(code: .decoding, message: "no column named \"\(name)\" (columns: \(handle.columnNames.joined(separator: ", ")))")
        }
        return column
    }

    func decode<T: PostgresDecodable>(column: Int, as type: T.Type) throws -> T {
        guard column >= 0 && column < count else {
            throw PostgresError(code: .decoding, message: "no column at index \(column) (the row has \(count))")
        }
        let dataType = handle.columnType(column)
        do {
            if isNull(column) { return try T.decodeNull() }
            let length = Int(PQgetlength(handle.pointer, index, Int32(column)))
            let bytes = UnsafeRawBufferPointer(start: PQgetvalue(handle.pointer, index, Int32(column)), count: length)
            return try T.decode(from: bytes, type: dataType)
        } catch let failure as PostgresDecodingFailure {
            throw decodingError(failure, column: column, dataType: dataType, swiftType: T.self)
        }
    }

    func decodingError(_ failure: PostgresDecodingFailure, column: Int, dataType: PostgresDataType, swiftType: Any.Type) -> PostgresError {
        let name = handle.columnNames[column]
        let reason = switch failure {
        case .typeMismatch: "a \(dataType) column cannot be read as \(swiftType)"
        case .unexpectedNull: "unexpected NULL for non-optional \(swiftType)"
        case .invalidBytes(let what): "cannot read \(dataType) as \(swiftType): \(what)"
        }
        var error = PostgresError(code: .decoding, message: "column \"\(name)\": \(reason)")
        error.column = name
        error.dataType = dataType.description
        return error
    }
}
