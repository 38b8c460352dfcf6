import Foundation
import LibPQ

extension Migrator {
    /// The files `up` would apply, in order, up to and including `target`. Reads the
    /// history without the runner's lock, so it never waits for a runner; refuses as `up`
    /// does when the history does not match the files.
    public func pending(to target: MigrationVersion? = nil) async throws -> [Migration] {
        let files = try MigrationDirectory.load(configuration.directory)
        try Self.check(target, in: files)
        return try await withConnection { connection in
            let history = try await MigrationHistory.open(on: connection, schema: configuration.historySchema, table: configuration.historyTable)
            return try await pending(of: files, history: history, to: target)
        }
    }

    /// Runs the pending files (up to `target`) against the database itself, in order,
    /// inside one transaction that is always rolled back, and reports for each how long
    /// its statements took, which relations it locked and in which mode, which it
    /// rewrote, and how many rows and bytes those have (see `Rehearsal`). A deploy can
    /// refuse a file that would hold ACCESS EXCLUSIVE on a big table
    /// (`[Rehearsal].tableBlockingLocks(aboveRows:)`).
    ///
    /// - It never commits, and never writes the history (see `Rehearser` for how a
    ///   statement is kept from ending the transaction). Files that run outside a
    ///   transaction, or bring their own BEGIN/COMMIT, are not run: they are reported
    ///   `.notRehearsed` and the rehearsal goes on — a later file that needed what one of
    ///   them makes fails, and is reported so. After a failure the transaction is aborted:
    ///   the files after it are `.notRehearsed`.
    /// - It never queues behind other sessions: each statement has `lockTimeout` to get
    ///   its locks, and a file that would wait longer fails, naming who holds the lock
    ///   when it could be seen. `statementTimeout` bounds each statement.
    /// - It does not take the runner's lock (a rehearsal beside a running `up` is
    ///   allowed; it waits for nothing), but a lock it gets is held until it rolls back:
    ///   a rewrite of a big table stops that table's readers and writers for as long as
    ///   the migration would. On a database under load, rehearse against a copy.
    /// - Not everything is rolled back. PostgreSQL keeps sequences advanced by `nextval`
    ///   or `setval`, and the statistics `CREATE INDEX` writes in place (`reltuples`,
    ///   `relpages`, `relhasindex`); whatever a function does outside the database
    ///   (dblink, a file written) stays done; a session advisory lock lasts until the
    ///   rehearsal's connection closes, at its end.
    /// - One transaction for all files: a file that uses an enum value an earlier file
    ///   adds fails here, though `up` (which commits each file) applies it.
    ///
    /// Cancelling the task cancels the running statement and rolls back.
    public func rehearse(
        to target: MigrationVersion? = nil,
        lockTimeout: Duration = .milliseconds(100),
        statementTimeout: Duration = .seconds(60)
    ) async throws -> [Rehearsal] {
        let files = try MigrationDirectory.load(configuration.directory)
        try Self.check(target, in: files)
        // 0 would be "no limit" to the server: a rehearsal waiting behind production.
        let lockTimeout = max(lockTimeout, .milliseconds(1))
        let statementTimeout = max(statementTimeout, .milliseconds(1))
        return try await withConnection(statementCache: false) { connection in
            try await nameSession(connection, "stockroom rehearse")
            let history = try await MigrationHistory.open(on: connection, schema: configuration.historySchema, table: configuration.historyTable)
            let plan = try await pending(of: files, history: history, to: target)
            guard !plan.isEmpty else { return [] }
            // Connected now: a lock timeout of 100 ms leaves no time to connect when the
            // statement turns out to wait.
            let watcher = try await PostgresConnection.connect(connectionString, logger: logger)
            let watch = LockWaitWatch(
                pid: connection.backendPID, threshold: lockTimeout / 3, interval: max(lockTimeout / 10, .milliseconds(5)),
                source: .shared(watcher), logger: logger, warns: false, metadata: [:])
            do {
                try await connection.simpleQuery(unsafeSQL: "BEGIN")
                let rehearsals = try await rehearse(plan, on: connection, watch: watch, lockTimeout: lockTimeout, statementTimeout: statementTimeout)
                try await rollBack(connection)
                await watcher.close()
                return rehearsals
            } catch {
                // Closing the connection (`withConnection` does) would roll back too.
                _ = try? await rollBack(connection)
                await watcher.close()
                throw error
            }
        }
    }

    private func rehearse(_ plan: [Migration], on connection: PostgresConnection, watch: LockWaitWatch, lockTimeout: Duration, statementTimeout: Duration) async throws -> [Rehearsal] {
        // A rehearsal that stops talking (its process stopped, not killed) must not keep
        // its locks: the server ends the session after 10 s idle in the transaction. A
        // killed one is noticed within a second even mid-statement, as the runner's is.
        try await connection.query("""
            SELECT pg_catalog.set_config('idle_in_transaction_session_timeout', '10000', true),
                   pg_catalog.set_config('client_connection_check_interval', '1000', true)
            """)
        var rehearser = Rehearser(
            connection: connection, watch: watch, lockTimeout: lockTimeout, statementTimeout: statementTimeout,
            original: try await RelationSnapshot.take(on: connection))
        var rehearsals: [Rehearsal] = []
        for migration in plan {
            let rehearsal = try await rehearser.rehearse(migration)
            logger.debug("rehearsed migration", metadata: ["migration.version": "\(migration.version)", "rehearsal.duration": "\(rehearsal.duration)"])
            rehearsals.append(rehearsal)
        }
        return rehearsals
    }

    /// In a task of its own: a cancelled task must still end its transaction.
    private func rollBack(_ connection: PostgresConnection) async throws {
        _ = try await Task.detached { try await connection.simpleQuery(unsafeSQL: "ROLLBACK") }.value
    }

    /// Refuses a `target` that names no file.
    static func check(_ target: MigrationVersion?, in files: [Migration]) throws(MigrationError) {
        if let target, !files.contains(where: { $0.version == target }) {
            throw MigrationError(.unknownVersion, "no migration file has version \(target)")
        }
    }

    /// The pending files up to `target`, in order, once the history is found to match
    /// the files.
    func pending(of files: [Migration], history: MigrationHistory, to target: MigrationVersion?) async throws -> [Migration] {
        let status = MigrationStatus.compare(files: files, history: try await history.entries())
        try status.checkConsistent(allowOutOfOrder: configuration.allowOutOfOrder, allowNewer: true)
        let pending = Set(status.filter { $0.state == .pending }.map(\.version))
        return files.filter { file in pending.contains(file.version) && (target.map { file.version <= $0 } ?? true) }
    }
}
