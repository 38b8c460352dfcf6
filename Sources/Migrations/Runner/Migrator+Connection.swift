import LibPQ

extension Migrator {
    /// A connection of the run's own, closed when `body` ends, however it ends. The
    /// server's errors outside a migration's SQL become `MigrationError.database`, so
    /// callers match one error type. Without `statementCache`, each statement is sent
    /// unnamed through the extended protocol, which refuses a text of two statements.
    func withConnection<T>(statementCache: Bool = true, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection: PostgresConnection
        do {
            var configuration = PostgresConnection.Configuration(connectionString)
            if !statementCache { configuration.statementCacheCapacity = 0 }
            connection = try await PostgresConnection.connect(configuration, logger: logger)
        } catch let error as PostgresError {
            throw MigrationError(.database, "cannot connect: \(error)", underlying: error)
        }
        do {
            let value = try await body(connection)
            await connection.close()
            return value
        } catch let error as PostgresError {
            await connection.close()
            throw MigrationError(.database, "the database answered: \(error)", underlying: error)
        } catch {
            await connection.close()
            throw error
        }
    }

    /// `body` under the runner's lock, with the history at hand and the timeouts set.
    func withLockedHistory<T>(create: Bool, _ body: (PostgresConnection, MigrationHistory) async throws -> T) async throws -> T {
        try await withConnection { connection in
            // A name in pg_stat_activity, so a runner that gives up waiting can say who holds
            // the lock; a name the caller chose (a service's own) is kept.
            try await nameSession(connection, "stockroom migrate")
            let history = try await MigrationHistory.open(on: connection, schema: configuration.historySchema, table: configuration.historyTable)
            let lock = MigrationLock(connection: connection, objectID: try await MigrationLock.key(on: connection, for: history))
            try await lock.acquire(timeout: configuration.lockWait)
            do {
                if create { try await history.create() }
                try await applyTimeouts(on: connection)
                let value = try await body(connection, history)
                await lock.release()
                return value
            } catch {
                await lock.release()
                throw error
            }
        }
    }

    /// Sets the session's `application_name` to `name`, unless the caller chose one.
    func nameSession(_ connection: PostgresConnection, _ name: String) async throws {
        try await connection.query("""
            SELECT set_config('application_name', \(name), false)
            WHERE current_setting('application_name') IN ('', 'stockroom')
            """)
    }

    /// `lock_timeout` and `statement_timeout` for the rest of the session (0 is none), and
    /// `client_connection_check_interval`: a runner that dies (`kill -9`, a lost host)
    /// mid-statement has its statement ended by the server within a second, instead of
    /// left running with its locks until it finishes.
    private func applyTimeouts(on connection: PostgresConnection) async throws {
        func milliseconds(_ duration: Duration?) -> Int64 {
            guard let duration else { return 0 }
            return duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        }
        try await connection.query("SELECT set_config('lock_timeout', \(String(milliseconds(configuration.lockTimeout))), false), set_config('statement_timeout', \(String(milliseconds(configuration.statementTimeout))), false), set_config('client_connection_check_interval', '1000', false)")
    }
}
