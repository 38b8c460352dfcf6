internal import CLibPQ
import Synchronization

/// Owns a `PGresult`. A result is immutable once libpq hands it over, so reading it from
/// any thread is safe.
final class ResultHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    let columnCount: Int
    let rowCount: Int
    /// Made on first use: a point query reading its one column by position never needs
    /// them, and building them cost an allocation per column per result.
    private let names = Mutex<[String]?>(nil)

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
        columnCount = Int(PQnfields(pointer))
        rowCount = Int(PQntuples(pointer))
    }

    var columnNames: [String] {
        names.withLock { names in
            if let names { return names }
            let made = (0..<columnCount).map { String(cString: PQfname(pointer, Int32($0))) }
            names = made
            return made
        }
    }

    func columnType(_ column: Int) -> PostgresDataType {
        PostgresDataType(PQftype(pointer, Int32(column)))
    }

    deinit { PQclear(pointer) }

    private struct KeyLookup: Hashable {
        let key: String
        let snakeCase: Bool
    }

    /// Column indexes by coding key, found once per result rather than once per row:
    /// decoding rows into `Decodable` types asks for every key of every row.
    private let keyColumns = Mutex<[KeyLookup: Int]>([:])

    func column(forKey key: String, snakeCase: Bool, find: () -> Int?) -> Int? {
        let lookup = KeyLookup(key: key, snakeCase: snakeCase)
        if let known = keyColumns.withLock({ $0[lookup] }) { return known }
        guard let found = find() else { return nil }
        keyColumns.withLock { $0[lookup] = found }
        return found
    }
}

/// The rows a statement returned, and how many rows it affected.
public struct PostgresRows: Sendable, RandomAccessCollection {
    let handle: ResultHandle

    init(_ handle: ResultHandle) { self.handle = handle }

    public var startIndex: Int { 0 }
    public var endIndex: Int { handle.rowCount }
    /// Any position gives a row; reading one the result does not have throws.
    public subscript(position: Int) -> PostgresRow { PostgresRow(handle: handle, index: position) }

    public var columns: [String] { handle.columnNames }

    /// Rows inserted, updated, deleted, selected, copied… as the command tag reports; 0
    /// for commands without a count.
    public var affectedRows: Int { Int(String(cString: PQcmdTuples(handle.pointer))) ?? 0 }

    /// The command tag, e.g. `INSERT 0 1` or `ROLLBACK`.
    public var commandTag: String { String(cString: PQcmdStatus(handle.pointer)) }

    /// Decodes every row into `type`; see `PostgresRow.decode(_:keyStrategy:)`.
    public func decode<T: Decodable>(_ type: T.Type, keyStrategy: PostgresRow.KeyStrategy = .convertToSnakeCase) throws -> [T] {
        try map { try $0.decode(type, keyStrategy: keyStrategy) }
    }
}
