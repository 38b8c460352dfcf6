internal import CLibPQ

extension PostgresConnection {
    /// Sends every statement in one round trip (libpq's pipeline mode) and returns each
    /// one's outcome, in order. Statements are independent: each runs in its own implicit
    /// transaction, so one that fails is reported for itself alone and the others still
    /// run. Throws only when the connection itself fails.
    ///
    /// A statement whose cached plan a schema change made unusable fails here once (it
    /// cannot be run again without reordering it after the others) and is prepared anew
    /// on its next use; `query` and `pipelineTransaction` retry it instead.
    public func pipeline(_ queries: [PostgresQuery], timeout: Duration? = nil) async throws -> [Result<PostgresRows, PostgresError>] {
        if queries.isEmpty { return [] }
        return try await perform(timeout: timeout) { connection in
            try connection.revalidateIfIdle()
            let results = try connection.runPipeline(queries, syncEach: true)
            connection.deallocateEvictedStatements()
            return results
        }
    }

    /// Sends every statement in one round trip, ending them with a single sync, so that
    /// they run as one implicit transaction: all of them commit together, or the first
    /// failure is thrown and nothing they did is kept. A setting made local to the
    /// transaction lasts until the end: `SELECT set_config(name, value, true)` (before
    /// PostgreSQL 17, `SET LOCAL` works too but warns that it is outside a transaction block).
    /// Inside `withTransaction` they are part of that transaction
    /// instead. Cheaper than ``pipeline(_:timeout:)`` by a commit and a reply per statement.
    ///
    /// Outside a transaction, when the first failure is a cached plan that a schema change
    /// made unusable, nothing was kept: the whole pipeline runs again once, re-prepared.
    public func pipelineTransaction(_ queries: [PostgresQuery], timeout: Duration? = nil) async throws -> [PostgresRows] {
        if queries.isEmpty { return [] }
        // Nothing is sent when any statement cannot be: all or nothing.
        if let failure = queries.lazy.compactMap(\.bindings.encodingFailure).first {
            throw PostgresError(code: .encoding, message: failure)
        }
        return try await perform(timeout: timeout) { connection in
            try connection.revalidateIfIdle()
            var results = try connection.runPipeline(queries, syncEach: false)
            if let failure = results.firstFailure, failure.isStalePlan || failure.sqlState == .invalidSQLStatementName,
               PQtransactionStatus(connection.raw) == PQTRANS_IDLE {
                results = try connection.runPipeline(queries, syncEach: false)
            }
            connection.deallocateEvictedStatements()
            return try results.map { try $0.get() }
        }
    }

    private struct Sent {
        var index: Int
        /// Its statement in the cache, if the cache is on.
        var key: StatementCache.Key?
        var prepare: (key: StatementCache.Key, name: String)?
    }

    /// With `syncEach`, a sync after every statement (each its own transaction); without,
    /// one at the end (one transaction, and after a failure the rest report "not run").
    func runPipeline(_ queries: [PostgresQuery], syncEach: Bool) throws -> [Result<PostgresRows, PostgresError>] {
        var results = [Result<PostgresRows, PostgresError>?](repeating: nil, count: queries.count)
        guard PQenterPipelineMode(raw) == 1 else { throw connectionError("could not enter pipeline mode") }
        // Nonblocking while sending, so that a large batch cannot deadlock with the server
        // filling our receive buffer while we fill its.
        PQsetnonblocking(raw, 1)
        defer {
            PQexitPipelineMode(raw)
            PQsetnonblocking(raw, 0)
        }

        var sent: [Sent] = []
        var preparing: [StatementCache.Key: String] = [:]
        for (index, query) in queries.enumerated() {
            if let failure = query.bindings.encodingFailure {
                results[index] = .failure(PostgresError(code: .encoding, message: failure))
                continue
            }
            let bindings = query.bindings
            let count = Int32(bindings.count)
            var entry = Sent(index: index)
            let accepted: Int32
            if statements.isEnabled {
                let key = StatementCache.Key(sql: query.sql, types: bindings.types)
                entry.key = key
                var name = statements.lookup(key) ?? preparing[key]
                if name == nil {
                    let fresh = statements.nextName()
                    guard PQsendPrepare(raw, fresh, query.sql, count, bindings.types) == 1 else { throw connectionError("could not send a statement") }
                    preparing[key] = fresh
                    entry.prepare = (key, fresh)
                    name = fresh
                }
                accepted = name!.withCString { name in
                    bindings.withUnsafeParameters { values, lengths, formats, _ in
                        PQsendQueryPrepared(raw, name, count, values, lengths, formats, 1)
                    }
                }
            } else {
                accepted = bindings.withUnsafeParameters { values, lengths, formats, types in
                    PQsendQueryParams(raw, query.sql, count, types, values, lengths, formats, 1)
                }
            }
            guard accepted == 1 else { throw connectionError("could not send a statement") }
            if syncEach || index == queries.count - 1 {
                guard PQpipelineSync(raw) == 1 else { throw connectionError("could not send a statement") }
            }
            sent.append(entry)
            // No flush of our own per statement: libpq sends once its buffer passes
            // 64 kB (and at every sync), so a short pipeline leaves in one write. A flush
            // here sent ORDER.PLACE's two statements as two packets, and the backend woke
            // for the first only to wait for the second.
        }
        try flushAll()

        for entry in sent {
            var prepareFailure: PostgresError?
            if let prepare = entry.prepare {
                let result = try nextPipelineResult()
                prepareFailure = error(from: result)
                PQclear(result)
                try expectEndOfCommand()
                if prepareFailure == nil { statements.insert(prepare.key, name: prepare.name) }
            }
            let result = try nextPipelineResult()
            if let failure = prepareFailure {
                PQclear(result)
                results[entry.index] = .failure(failure)
            } else if let failure = error(from: result) {
                PQclear(result)
                if let key = entry.key { _ = forgetStale(failure, key: key) }
                results[entry.index] = .failure(failure)
            } else {
                results[entry.index] = .success(PostgresRows(ResultHandle(result)))
            }
            try expectEndOfCommand()
            if syncEach { try expectSync() }
        }
        if !syncEach { try expectSync() }
        return results.map { $0! }
    }

    /// Sends everything libpq has buffered, reading incoming data meanwhile so that the
    /// server never stalls on a full socket while we wait for it to take ours.
    private func flushAll() throws {
        while true {
            let state = PQflush(raw)
            if state == 0 { return }
            if state < 0 { throw connectionError("could not send to the server") }
            let events = Socket.wait(PQsocket(raw), events: Int16(POLLIN_VALUE | POLLOUT_VALUE), milliseconds: -1)
            if events & Int16(POLLIN_VALUE) != 0, PQconsumeInput(raw) == 0 {
                throw connectionError("could not read from the server")
            }
        }
    }

    private func nextPipelineResult() throws -> OpaquePointer {
        while PQisBusy(raw) == 1 {
            Socket.wait(PQsocket(raw), events: Int16(POLLIN_VALUE), milliseconds: -1)
            guard PQconsumeInput(raw) == 1 else { throw connectionError("could not read from the server") }
        }
        guard let result = PQgetResult(raw) else { throw connectionError("pipeline out of step") }
        return result
    }

    private func expectSync() throws {
        let sync = try nextPipelineResult()
        let status = PQresultStatus(sync)
        PQclear(sync)
        guard status == PGRES_PIPELINE_SYNC else { throw connectionError("pipeline out of step") }
    }

    /// Each command's results end with a NULL from `PQgetResult`.
    private func expectEndOfCommand() throws {
        while PQisBusy(raw) == 1 {
            Socket.wait(PQsocket(raw), events: Int16(POLLIN_VALUE), milliseconds: -1)
            guard PQconsumeInput(raw) == 1 else { throw connectionError("could not read from the server") }
        }
        if let extra = PQgetResult(raw) {
            PQclear(extra)
            throw connectionError("pipeline out of step")
        }
    }
}

extension [Result<PostgresRows, PostgresError>] {
    fileprivate var firstFailure: PostgresError? {
        for case .failure(let error) in self { return error }
        return nil
    }
}
