internal import CLibPQ

extension PostgresConnection {
    /// Runs one statement with its bound parameters and returns its rows.
    ///
    /// Statements are prepared once per connection and reused (see
    /// `Configuration.statementCacheCapacity`); results come back in binary format.
    /// A COPY statement is refused with `.unsupported`: use `copyFrom`.
    /// - Parameter timeout: cancel the statement on the server when it runs longer.
    @discardableResult
    nonisolated(nonsending) public func query(_ query: PostgresQuery, timeout: Duration? = nil) async throws -> PostgresRows {
        if let failure = query.bindings.encodingFailure {
            throw PostgresError(code: .encoding, message: failure)
        }
        // The same body either way; inline, it is not copied to the heap (see performHere).
        if thread.isCurrent {
            return try await performHere(timeout: timeout) { try $0.runExtended(query) }
        }
        return try await perform(timeout: timeout) { try $0.runExtended(query) }
    }

    /// Sends `sql` as is through the simple query protocol, as psql does: it may hold
    /// several statements (a migration file, a DO block, its own BEGIN/COMMIT) but
    /// takes no parameters. Returns the last statement's result.
    ///
    /// COPY is refused with `.unsupported` (use `copyFrom`): a COPY FROM STDIN is aborted
    /// (and the rest of the text skipped), a COPY TO STDOUT's rows are discarded.
    ///
    /// Its rows come in text format: they read as `String` (any type), `Bool`, the
    /// integers, `Float`, `Double`, `Decimal`, `UUID`, bytea as `[UInt8]` or `Data`, and
    /// json into `PostgresJSON`; any other type throws a `.decoding` error. Use `query()`
    /// for rows to read into other types.
    @discardableResult
    public func simpleQuery(unsafeSQL sql: String, timeout: Duration? = nil) async throws -> PostgresRows {
        try await perform(timeout: timeout) { connection in
            try connection.revalidateIfIdle()
            var last: OpaquePointer?
            var failure: PostgresError?
            var completed = 0
            guard PQsendQuery(connection.raw, sql) == 1 else { throw connection.connectionError("could not send the query") }
            // Read every result so that the connection is ready for the next statement.
            // Each statement before a failing one yields one result.
            while let result = PQgetResult(connection.raw) {
                let status = PQresultStatus(result)
                if status == PGRES_COPY_IN || status == PGRES_COPY_OUT {
                    // The COPY's own result (or the server's error for the aborted
                    // COPY IN) follows; the COPY counts as the failing statement.
                    PQclear(result)
                    var refused = connection.abandonCopy(status)
                    refused.statementIndex = completed
                    if failure == nil { failure = refused }
                    continue
                }
                if failure == nil {
                    if var error = connection.error(from: result) {
                        error.statementIndex = completed
                        failure = error
                    } else {
                        completed += 1
                    }
                }
                if let last { PQclear(last) }
                last = result
            }
            if let failure {
                if let last { PQclear(last) }
                throw failure
            }
            guard let last else { throw connection.connectionError("no result") }
            return PostgresRows(ResultHandle(last))
        }
    }

    // MARK: - On the connection's queue

    private func runExtended(_ query: PostgresQuery) throws -> PostgresRows {
        try revalidateIfIdle()
        return try executeExtended(query)
    }

    /// Runs a statement through the extended protocol, preparing it once if the cache
    /// is on. Retries once when the server lost the prepared statement (after `DISCARD
    /// ALL`) or its plan no longer fits (a schema change), if no transaction is open.
    func executeExtended(_ query: PostgresQuery) throws -> PostgresRows {
        defer { deallocateEvictedStatements() }
        do {
            return try executeOnce(query)
        } catch let error as PostgresError where forgetStale(error, key: StatementCache.Key(sql: query.sql, types: query.bindings.types)) {
            // Inside a transaction the failure stands (it aborted the transaction), but
            // the statement is still prepared anew next time.
            guard PQtransactionStatus(raw) == PQTRANS_IDLE else { throw error }
            return try executeOnce(query)
        }
    }

    /// Whether `error` says that `key`'s prepared statement is unusable; if so, the cache
    /// forgets it. After a migration changed the types a statement returns, the server
    /// refuses to run its old plan ("cached plan must not change result type") every
    /// time, until it is prepared again: without this, every pooled connection would
    /// fail that statement until restarted.
    func forgetStale(_ error: PostgresError, key: StatementCache.Key) -> Bool {
        guard statements.isEnabled else { return false }
        if error.sqlState == .invalidSQLStatementName {
            statements.reset()  // DISCARD ALL or DEALLOCATE ALL: none of them is left
            return true
        }
        guard error.isStalePlan else { return false }
        statements.invalidate(key)
        return true
    }

    private func executeOnce(_ query: PostgresQuery) throws -> PostgresRows {
        let bindings = query.bindings
        let count = Int32(bindings.count)
        let result: OpaquePointer?
        if statements.isEnabled {
            // withCString lends the name's own bytes; passing the String itself makes a
            // C copy on the heap for every statement.
            result = try preparedName(for: query).withCString { name in
                bindings.withUnsafeParameters { values, lengths, formats, _ in
                    PQexecPrepared(raw, name, count, values, lengths, formats, 1)
                }
            }
        } else {
            result = bindings.withUnsafeParameters { values, lengths, formats, types in
                PQexecParams(raw, query.sql, count, types, values, lengths, formats, 1)
            }
        }
        return try rows(from: result)
    }

    /// The name of `query`'s prepared statement, preparing it on a cache miss.
    func preparedName(for query: PostgresQuery) throws -> String {
        let key = StatementCache.Key(sql: query.sql, types: query.bindings.types)
        if let name = statements.lookup(key) { return name }
        let name = statements.nextName()
        let prepared = PQprepare(raw, name, query.sql, Int32(query.bindings.count), query.bindings.types)
        _ = try rows(from: prepared)
        statements.insert(key, name: name)
        return name
    }

    /// Prepared statements are not transactional, so this works inside a transaction too,
    /// unless it has failed; then they wait for the next statement.
    func deallocateEvictedStatements() {
        // Nearly always none: checked first, as this runs after every statement.
        guard !statements.evicted.isEmpty else { return }
        let status = PQtransactionStatus(raw)
        guard status == PQTRANS_IDLE || status == PQTRANS_INTRANS else { return }
        for name in statements.takeEvicted() {
            PQclear(PQexec(raw, "DEALLOCATE \(PostgresQuery.quoteIdentifier(name))"))
        }
    }

    /// Takes ownership of `result`: rows on success, the server's error otherwise. A COPY
    /// started this way is ended and refused (`.unsupported`).
    func rows(from result: OpaquePointer?) throws -> PostgresRows {
        guard let result else { throw connectionError("no result from the server") }
        let status = PQresultStatus(result)
        if status == PGRES_COPY_IN || status == PGRES_COPY_OUT {
            // Otherwise the COPY "succeeds" with no rows, and libpq ends it behind the
            // next statement's back.
            PQclear(result)
            let refused = abandonCopy(status)
            while let rest = PQgetResult(raw) { PQclear(rest) }
            throw refused
        }
        if let error = error(from: result) {
            PQclear(result)
            throw error
        }
        return PostgresRows(ResultHandle(result))
    }

    /// The error a result carries, if it is not a success; does not free it.
    func error(from result: OpaquePointer) -> PostgresError? {
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY, PGRES_SINGLE_TUPLE, PGRES_COPY_IN, PGRES_COPY_OUT, PGRES_PIPELINE_SYNC:
            return nil
        case PGRES_PIPELINE_ABORTED:
            return PostgresError(code: .pipelineAborted, message: "not run: an earlier statement in the same pipeline segment failed")
        default:
            return PostgresError(result: result, connection: self)
        }
    }
}

extension PostgresError {
    /// The server's refusal to run a prepared statement whose result types changed since
    /// it was prepared ("cached plan must not change result type").
    var isStalePlan: Bool {
        sqlState == .featureNotSupported && routine == "RevalidateCachedQuery"
    }

    /// Reads the server's error fields from a failed result.
    init(result: OpaquePointer, connection: PostgresConnection) {
        func field(_ code: Character) -> String? {
            PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) }
        }
        guard let state = field("C") else {
            // No SQLSTATE: libpq itself failed, usually because the connection broke.
            let message = String(cString: PQresultErrorMessage(result)).trimmingTrailingNewlines()
            self = connection.connectionError(message.isEmpty ? "the statement failed" : message)
            return
        }
        self.init(code: .server, message: field("M") ?? "", sqlState: SQLState(state))
        if sqlState == .readOnlySQLTransaction { connection.sawReadOnlyRefusal = true }
        detail = field("D")
        hint = field("H")
        constraint = field("n")
        schema = field("s")
        table = field("t")
        column = field("c")
        routine = field("R")
        dataType = field("d")
        context = field("W")
        severity = field("V") ?? field("S")
        position = field("P").flatMap { Int($0) }
    }
}
