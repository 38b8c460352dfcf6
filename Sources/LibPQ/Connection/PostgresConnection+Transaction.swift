internal import CLibPQ

/// The isolation level of a transaction.
public enum PostgresIsolationLevel: String, Sendable {
    case readCommitted = "READ COMMITTED"
    case repeatableRead = "REPEATABLE READ"
    case serializable = "SERIALIZABLE"
}

extension PostgresConnection {
    /// Runs `body` in a transaction: commits when it returns, rolls back when it throws.
    ///
    /// If `body` catches a failed statement and returns anyway, the server has already
    /// aborted the transaction; this rolls back and throws `.transactionAborted` rather
    /// than report a commit that did not happen.
    ///
    /// Called inside another transaction, it runs `body` in a savepoint instead: a
    /// throwing `body` rolls back to the savepoint (its own work only) and the outer
    /// transaction goes on; nothing commits until the outermost one does. An isolation
    /// level or read-only mode cannot change there and is refused (`.misuse`).
    ///
    /// When the connection breaks before the COMMIT's answer arrives, the server is asked
    /// on a new connection whether the transaction committed (see
    /// `Configuration.commitOutcomeTimeout`): this returns normally if it did, and throws
    /// `.connection` only when it did not — so a caller can retry on `.connection`
    /// without doing the work twice. `.commitOutcomeUnknown` means the server could
    /// not be asked in time. (When this end cut the connection at its deadline before
    /// the transaction's id came back, the backend itself is asked about: see
    /// `pipelineTransaction`.)
    public func withTransaction<T>(
        isolation: PostgresIsolationLevel? = nil,
        readOnly: Bool = false,
        isolation actor: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let depth = transactionDepth.add(1, ordering: .relaxed).newValue
        defer { transactionDepth.subtract(1, ordering: .relaxed) }
        if !isIdle {
            guard isolation == nil, !readOnly else {
                throw PostgresError(code: .misuse, message: "a transaction nested in another cannot set its own isolation level or read-only mode")
            }
            return try await withSavepoint("libpq_savepoint_\(depth)", body)
        }
        var begin = "BEGIN"
        if let isolation { begin += " ISOLATION LEVEL \(isolation.rawValue)" }
        if readOnly { begin += " READ ONLY" }
        try await control(begin)
        let value: T
        do {
            value = try await body(self)
        } catch {
            await rollbackQuietly()
            throw error
        }
        if try await isTransactionFailed() {
            await rollbackQuietly()
            throw PostgresError(code: .transactionAborted, message: "a statement in the transaction failed, so it was rolled back instead of committed", sqlState: .inFailedSQLTransaction)
        }
        let attempt = try await perform(cancellable: false, abandonable: false) { connection in connection.commit() }
        try await attempt.resolve(connection: self)
        return value
    }

    private func withSavepoint<T>(_ name: String, isolation actor: isolated (any Actor)? = #isolation, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        let quoted = PostgresQuery.quoteIdentifier(name)
        try await control("SAVEPOINT \(quoted)")
        let value: T
        do {
            value = try await body(self)
        } catch {
            _ = try? await control("ROLLBACK TO SAVEPOINT \(quoted)")
            _ = try? await control("RELEASE SAVEPOINT \(quoted)")
            throw error
        }
        if try await isTransactionFailed() {
            try await control("ROLLBACK TO SAVEPOINT \(quoted)")
            try await control("RELEASE SAVEPOINT \(quoted)")
            throw PostgresError(code: .transactionAborted, message: "a statement in the nested transaction failed, so it was rolled back to its savepoint", sqlState: .inFailedSQLTransaction)
        }
        try await control("RELEASE SAVEPOINT \(quoted)")
        return value
    }

    /// `txid sync COMMIT sync` in one round trip, on the connection's thread: the id
    /// comes back before the COMMIT's answer, for `CommitAttempt.resolve`.
    private func commit() -> CommitAttempt<Void> {
        var results = [Result<PostgresRows, PostgresError>?](repeating: nil, count: 2)
        do {
            try runPipeline([Self.transactionIDQuery, "COMMIT"], syncAfter: { _ in true }, into: &results)
        } catch let error as PostgresError where error.code == .connection {
            if case .success(let rows)? = results[0] {
                guard let transaction = Transaction(rows, backendPID: backendPID) else { return .failed(error) }  // wrote nothing
                return .unknown(transaction, value: (), error: error)
            }
            // Cut by this end before the id came: the server may still read the COMMIT.
            // Closed by the server: it never read it.
            if let cut = cutBackend { return .cut(cut, value: (), error: error) }
            return .failed(error)
        } catch {
            return .failed(error as? PostgresError ?? PostgresError(code: .unexpectedResponse, message: "\(error)"))
        }
        if case .failure(let failure)? = results[1] { return .failed(failure) }
        return .committed(())
    }

    /// Runs a transaction-control statement; not cancellable, so that a cancelled task
    /// still ends its transaction (its deadline holds all the same).
    private func control(_ sql: String) async throws {
        _ = try await perform(cancellable: false) { connection in
            if sql.hasPrefix("BEGIN") { try connection.revalidateIfIdle() }
            _ = try connection.rows(from: PQexec(connection.raw, sql))
        }
    }

    private func rollbackQuietly() async {
        do {
            try await control("ROLLBACK")
        } catch {
            logger.debug("rollback failed", metadata: ["error": "\(error)"])
        }
    }

    private func isTransactionFailed() async throws -> Bool {
        try await perform(cancellable: false) { connection in
            PQtransactionStatus(connection.raw) == PQTRANS_INERROR
        }
    }
}

/// Runs `operation` again when it fails with a serialization failure or a deadlock, up
/// to `maxAttempts` times in all, waiting a little longer (with jitter) each time. The
/// operation must be a whole transaction: retrying one statement of a failed
/// transaction cannot succeed.
public func withTransactionRetry<T>(
    maxAttempts: Int = 5,
    isolation actor: isolated (any Actor)? = #isolation,
    _ operation: () async throws -> T
) async throws -> T {
    precondition(maxAttempts >= 1, "maxAttempts must be at least 1")
    var attempt = 1
    while true {
        do {
            return try await operation()
        } catch let error as PostgresError where error.isRetryableTransactionFailure && attempt < maxAttempts {
            let backoff = min(1 << attempt, 64)  // milliseconds: 2, 4, 8 … 64
            try await Task.sleep(for: .milliseconds(Int.random(in: backoff / 2...backoff)))
            attempt += 1
        }
    }
}
