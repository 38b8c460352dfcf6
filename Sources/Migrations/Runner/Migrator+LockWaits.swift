import LibPQ

extension Migrator {
    /// Runs `body` — statements of `migration` on `connection` — under a `LockWaitWatch`:
    /// a wait for a lock is logged once it passes a second (or half `lock_timeout`),
    /// naming who blocks it, and when the statement gives up on `lock_timeout` (55P03)
    /// its error says who blocked it. The server's message is kept in front; what is
    /// added is ours, and holds no one's SQL.
    @discardableResult
    func watchingLockWaits<T>(
        of connection: PostgresConnection,
        _ migration: Migration,
        isolation actor: isolated (any Actor)? = #isolation,
        _ body: () async throws -> T
    ) async throws -> T {
        let watch = LockWaitWatch.forRunner(
            pid: connection.backendPID, lockTimeout: configuration.lockTimeout, connectionString: connectionString,
            logger: logger, metadata: ["migration.version": "\(migration.version)", "postgres.backend_pid": "\(connection.backendPID)"])
        let (result, _, blockers) = await watch.observe(body)
        switch result {
        case .success(let value):
            return value
        case .failure(var error as PostgresError) where error.sqlState == .lockNotAvailable && !blockers.isEmpty:
            error.message += "; blocked by \(blockers.listed)"
            throw error
        case .failure(let error):
            throw error
        }
    }
}
