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
            var results = [Result<PostgresRows, PostgresError>?](repeating: nil, count: queries.count)
            try connection.runPipeline(queries, syncAfter: { _ in true }, into: &results)
            connection.deallocateEvictedStatements()
            return results.map { $0! }
        }
    }

    /// Sends every statement in one round trip as one transaction: all of them commit
    /// together, or the first failure is thrown and nothing they did is kept. A setting
    /// made local to the transaction lasts until the end: `SELECT set_config(name, value,
    /// true)` (or `SET LOCAL`). Inside `withTransaction` they are part of that transaction
    /// instead, and nothing is committed here.
    ///
    /// On its own it knows its commit's outcome, as `withTransaction` does: the
    /// transaction's id travels back before the COMMIT (still one round trip), and if the
    /// connection breaks before the COMMIT's answer, a new connection asks the server
    /// (`txid_status`) whether it committed. So it returns the rows when it did, throws
    /// `.connection` when it did not, and `.commitOutcomeUnknown` when the server cannot
    /// be asked within `Configuration.commitOutcomeTimeout`, or restarted in between
    /// (then its answer may be about another transaction: see `transactionIsOver`).
    /// When this end cut the connection before even the id came back (its deadline
    /// passed and the cancel did not get through), the server may still run everything
    /// it received and commit: it is asked about the backend instead, and a commit found
    /// that way throws `.commitOutcomeUnknown` with `transactionIsOver` (the rows were
    /// lost with the connection; find the change by what you know of it).
    ///
    /// Outside a transaction, when the first failure is a cached plan that a schema change
    /// made unusable, nothing was kept: the whole pipeline runs again once, re-prepared.
    public func pipelineTransaction(_ queries: [PostgresQuery], timeout: Duration? = nil) async throws -> [PostgresRows] {
        if queries.isEmpty { return [] }
        // Nothing is sent when any statement cannot be: all or nothing.
        if let failure = queries.lazy.compactMap(\.bindings.encodingFailure).first {
            throw PostgresError(code: .encoding, message: failure)
        }
        let outcome = try await perform(timeout: timeout, abandonable: false) { connection -> CommitAttempt<[PostgresRows]> in
            try connection.revalidateIfIdle()
            let nested = PQtransactionStatus(connection.raw) != PQTRANS_IDLE
            var attempt = connection.runTransactionPipeline(queries, nested: nested)
            if case .failed(let failure) = attempt, failure.isStalePlan || failure.sqlState == .invalidSQLStatementName,
               PQtransactionStatus(connection.raw) == PQTRANS_IDLE {
                attempt = connection.runTransactionPipeline(queries, nested: nested)
            }
            connection.deallocateEvictedStatements()
            return attempt
        }
        return try await outcome.resolve(connection: self)
    }

    /// `queries [txid flush] sync`, the bracketed part unless `nested`: the statements run
    /// as one implicit transaction that commits at the sync. The flush request makes the
    /// server send every result so far, the transaction's id last, before it reads the
    /// sync and commits.
    private func runTransactionPipeline(_ queries: [PostgresQuery], nested: Bool) -> CommitAttempt<[PostgresRows]> {
        if nested {
            var results = [Result<PostgresRows, PostgresError>?](repeating: nil, count: queries.count)
            do {
                try runPipeline(queries, syncAfter: { $0 == queries.count - 1 }, into: &results)
                return .committed(try results.map { try $0!.get() })
            } catch {
                return .failed(error as? PostgresError ?? PostgresError(code: .unexpectedResponse, message: "\(error)"))
            }
        }
        let all = queries + [Self.transactionIDQuery]
        let idIndex = all.count - 1
        var results = [Result<PostgresRows, PostgresError>?](repeating: nil, count: all.count)
        var commitFailure: PostgresError?
        do {
            commitFailure = try runPipeline(all, syncAfter: { _ in false }, flushBeforeLastSync: true, into: &results)
        } catch let error as PostgresError where error.code == .connection {
            // Broken mid-way. Once the transaction's id came back, so had every
            // statement's rows: only the commit's answer is missing.
            if case .success(let rows)? = results[idIndex] {
                guard let transaction = Transaction(rows, backendPID: backendPID) else { return .failed(error) }  // wrote nothing
                return .unknown(transaction, value: results[..<idIndex].map { try! $0!.get() }, error: error)
            }
            // Cut by this end before the id came: the server may still run it all and
            // commit. Closed by the server: it never got that far.
            if let cut = cutBackend { return .cut(cut, value: nil, error: error) }
            return .failed(error)
        } catch {
            return .failed(error as? PostgresError ?? PostgresError(code: .unexpectedResponse, message: "\(error)"))
        }
        // A failed statement aborts the rest; nothing of the transaction is kept.
        for case .failure(let failure)? in results where failure.code != .pipelineAborted {
            return .failed(failure)
        }
        // Then the commit itself: a deferred constraint, a serialization failure.
        if let commitFailure { return .failed(commitFailure) }
        return .committed(results[..<idIndex].map { try! $0!.get() })
    }

    private struct Sent {
        var index: Int
        /// Its statement in the cache, if the cache is on.
        var key: StatementCache.Key?
        var prepare: (key: StatementCache.Key, name: String)?
    }

    /// A sync after each statement for which `syncAfter` is true (and always after the
    /// last): each segment between syncs is one implicit transaction, and after a
    /// failure the rest of its segment reports `.pipelineAborted`. Results land in
    /// `results` as they arrive, so a caller still has those that came before a broken
    /// connection made this throw. A segment that fails to commit (a deferred
    /// constraint) reports it as its last statement's result; for the last segment it
    /// is also returned. `flushBeforeLastSync` asks the server to send every result
    /// before it commits the last segment.
    @discardableResult
    func runPipeline(_ queries: [PostgresQuery], syncAfter: (Int) -> Bool, flushBeforeLastSync: Bool = false, into results: inout [Result<PostgresRows, PostgresError>?]) throws -> PostgresError? {
        guard PQenterPipelineMode(raw) == 1 else { throw connectionError("could not enter pipeline mode") }
        // Nonblocking while sending, so that a large batch cannot deadlock with the server
        // filling our receive buffer while we fill its.
        PQsetnonblocking(raw, 1)
        defer {
            PQexitPipelineMode(raw)
            PQsetnonblocking(raw, 0)
        }

        var sent: [Sent] = []
        var syncs: [Bool] = []
        var preparing: [StatementCache.Key: String] = [:]
        for (index, query) in queries.enumerated() {
            if let failure = query.bindings.encodingFailure {
                results[index] = .failure(PostgresError(code: .encoding, message: failure))
                // Its sync still ends the statements before it.
                if syncAfter(index) || index == queries.count - 1, let last = syncs.indices.last, !syncs[last] {
                    guard PQpipelineSync(raw) == 1 else { throw connectionError("could not send a statement") }
                    syncs[last] = true
                }
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
            if syncAfter(index) || index == queries.count - 1 {
                if flushBeforeLastSync, index == queries.count - 1 {
                    guard PQsendFlushRequest(raw) == 1 else { throw connectionError("could not send a statement") }
                }
                guard PQpipelineSync(raw) == 1 else { throw connectionError("could not send a statement") }
            }
            sent.append(entry)
            syncs.append(syncAfter(index) || index == queries.count - 1)
            // No flush of our own per statement: libpq sends once its buffer passes
            // 64 kB (and at every sync), so a short pipeline leaves in one write. A flush
            // here sent ORDER.PLACE's two statements as two packets, and the backend woke
            // for the first only to wait for the second.
        }
        try flushAll()

        var lastCommitFailure: PostgresError?
        for (position, entry) in sent.enumerated() {
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
            if syncs[position], let failure = try expectSync() {
                results[entry.index] = .failure(failure)
                lastCommitFailure = position == sent.count - 1 ? failure : nil
            }
        }
        return lastCommitFailure
    }

    /// Sends everything libpq has buffered, reading incoming data meanwhile so that the
    /// server never stalls on a full socket while we wait for it to take ours.
    func flushAll() throws {
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

    func nextPipelineResult() throws -> OpaquePointer {
        while PQisBusy(raw) == 1 {
            Socket.wait(PQsocket(raw), events: Int16(POLLIN_VALUE), milliseconds: -1)
            guard PQconsumeInput(raw) == 1 else { throw connectionError("could not read from the server") }
        }
        guard let result = PQgetResult(raw) else { throw connectionError("pipeline out of step") }
        return result
    }

    /// Reads a sync's answer: nil, or the error of the implicit commit it made — which
    /// libpq hands over first, as a result of its own.
    func expectSync() throws -> PostgresError? {
        var sync = try nextPipelineResult()
        var commitFailure: PostgresError?
        if PQresultStatus(sync) == PGRES_FATAL_ERROR {
            commitFailure = error(from: sync)
            PQclear(sync)
            try expectEndOfCommand()
            sync = try nextPipelineResult()
        }
        let status = PQresultStatus(sync)
        PQclear(sync)
        guard status == PGRES_PIPELINE_SYNC else { throw connectionError("pipeline out of step") }
        return commitFailure
    }

    /// Each command's results end with a NULL from `PQgetResult`.
    func expectEndOfCommand() throws {
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


