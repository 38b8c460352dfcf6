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
    public func withTransaction<T>(
        isolation: PostgresIsolationLevel? = nil,
        readOnly: Bool = false,
        isolation actor: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
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
        try await control("COMMIT")
        return value
    }

    /// Runs a transaction-control statement; not cancellable, so that a cancelled task
    /// still ends its transaction.
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
