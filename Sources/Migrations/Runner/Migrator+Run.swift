import Foundation
import LibPQ

extension Migrator {
    /// Which way a script goes: an up script adds its history row, a down script removes it.
    enum Direction {
        case up
        case down
    }

    /// Runs one script of `migration` and keeps the history in step. Returns how long it
    /// took.
    func run(_ script: MigrationScript, of migration: Migration, _ direction: Direction, on connection: PostgresConnection, history: MigrationHistory) async throws -> Duration {
        let clock = ContinuousClock()
        let start = clock.now
        func done() async throws {
            switch direction {
            case .up: try await history.record(migration, outcome: .applied, duration: clock.now - start)
            case .down: try await history.remove(migration.version)
            }
        }
        // Before a script that runs outside our transaction: a "running" row, so that if
        // this process dies midway the next runner sees the migration as failed. A down
        // script keeps its row (and when it was applied) and only changes the outcome.
        func markRunning() async throws {
            switch direction {
            case .up: try await history.record(migration, outcome: .running, duration: nil)
            case .down: try await history.setOutcome(migration.version, .running)
            }
        }
        // The server undid all of it: the history goes back to how it was.
        func undoRunning() async throws {
            switch direction {
            case .up: try await history.remove(migration.version)
            case .down: try await history.setOutcome(migration.version, .applied)
            }
        }
        // The row keeps what the server said; the advice on what to do is added again
        // when `up` refuses, so it is not stored (and then repeated) here.
        func markFailed(_ error: PostgresError, in sentText: String, firstLine: Int) async throws -> MigrationError {
            let cause = describe(error, in: script, sentText: sentText, firstLine: firstLine)
            try await history.setOutcome(migration.version, .failed, error: cause)
            return failure(script, of: migration, error, sentText: sentText, firstLine: firstLine, partial: true)
        }
        // The run was cancelled (SIGTERM or SIGINT to `stockroom migrate`): the statement
        // was cancelled on the server with it, and the history says where it stopped. In
        // a task of its own: this one is cancelled, and would skip the write.
        func markCancelled(in sentText: String, firstLine: Int) async throws -> MigrationError {
            let stopped = PostgresError(code: .server, message: "the run was cancelled (SIGTERM or SIGINT) while this statement ran", sqlState: .queryCanceled)
            let cause = describe(stopped, in: script, sentText: sentText, firstLine: firstLine)
            _ = try await Task.detached { try await history.setOutcome(migration.version, .failed, error: cause) }.value
            return failure(script, of: migration, stopped, sentText: sentText, firstLine: firstLine, partial: true)
        }

        switch script.mode {
        case .transaction:
            // The file and its history row commit together, or neither does. The file goes
            // whole through the simple query protocol, as psql would send it.
            var attempt = 0
            while true {
                do {
                    try await connection.withTransaction { connection in
                        if !script.isEmpty {
                            try await watchingLockWaits(of: connection, migration) { try await connection.simpleQuery(unsafeSQL: script.sql) }
                        }
                        try await done()
                    }
                    break
                } catch let error as PostgresError where error.sqlState == .lockNotAvailable && attempt < configuration.lockRetries {
                    // Rolled back whole: running it again is safe, and the blocker (a
                    // long transaction, typically) may be gone in a moment.
                    attempt += 1
                    let pause = configuration.lockRetryBackoff * (1 << (attempt - 1)) * Double.random(in: 0.75...1.25)
                    // The message names who blocked it, when the watcher saw them.
                    logger.warning("migration waited longer than lock_timeout for a lock; trying again", metadata: [
                        "migration.version": "\(migration.version)", "attempt": "\(attempt + 1)",
                        "pause": "\(pause)", "postgres.error": "\(error.message)",
                    ])
                    try await Task.sleep(for: pause)
                } catch let error as PostgresError {
                    throw failure(script, of: migration, error, sentText: script.sql, firstLine: 1, partial: false)
                }
            }

        case .ownTransaction:
            // The file brings its own BEGIN/COMMIT, so it cannot be wrapped in ours.
            try await markRunning()
            do {
                try await watchingLockWaits(of: connection, migration) { try await connection.simpleQuery(unsafeSQL: script.sql) }
            } catch is CancellationError {
                _ = try? await Task.detached { try await connection.simpleQuery(unsafeSQL: "ROLLBACK") }.value
                throw try await markCancelled(in: script.sql, firstLine: 1)
            } catch let error as PostgresError {
                _ = try? await connection.simpleQuery(unsafeSQL: "ROLLBACK")
                // One BEGIN … COMMIT around the whole file: the server rolled all of it
                // back, so there is nothing for a person to settle.
                if script.isOneOwnTransaction {
                    try await undoRunning()
                    throw failure(script, of: migration, error, sentText: script.sql, firstLine: 1, partial: false)
                }
                throw try await markFailed(error, in: script.sql, firstLine: 1)
            }
            // A transaction left open (a BEGIN the lexer could not see, say, built by
            // EXECUTE) would take the history row with it when it is rolled back later.
            if !connection.isIdle {
                _ = try? await connection.simpleQuery(unsafeSQL: "ROLLBACK")
                let open = PostgresError(code: .transactionAborted, message: "the file ended inside a transaction it opened; that transaction was rolled back")
                throw try await markFailed(open, in: script.sql, firstLine: 1)
            }
            try await done()

        case .noTransaction:
            // Statements one at a time: in one multi-statement string PostgreSQL would run
            // them in an implicit transaction, which these statements refuse.
            try await markRunning()
            for statement in script.statements {
                do {
                    try await watchingLockWaits(of: connection, migration) { try await connection.simpleQuery(unsafeSQL: statement.text) }
                } catch is CancellationError {
                    if !connection.isIdle { _ = try? await Task.detached { try await connection.simpleQuery(unsafeSQL: "ROLLBACK") }.value }
                    throw try await markCancelled(in: statement.text, firstLine: statement.line)
                } catch let error as PostgresError {
                    // A statement of a BEGIN … COMMIT block in the file failed: end that
                    // transaction, or the failure could not even be recorded (25P02).
                    if !connection.isIdle { _ = try? await connection.simpleQuery(unsafeSQL: "ROLLBACK") }
                    throw try await markFailed(error, in: statement.text, firstLine: statement.line)
                }
            }
            try await done()
        }
        return clock.now - start
    }

    /// The error for a failed script: what the server said, and whether anything of it
    /// remains; for a script that ran outside our transaction, how to resolve it.
    private func failure(_ script: MigrationScript, of migration: Migration, _ error: PostgresError, sentText: String, firstLine: Int, partial: Bool) -> MigrationError {
        let cause = describe(error, in: script, sentText: sentText, firstLine: firstLine)
        guard partial else {
            return MigrationError(.migrationFailed, cause + ". Nothing of it was applied.", underlying: error)
        }
        return MigrationError(.needsResolution, cause + """
            . It ran outside a transaction, so statements before the failing one may have taken effect; \
            fix the database by hand, then run `stockroom migrate resolve \(migration.version) --applied` \
            or `stockroom migrate resolve \(migration.version) --rolled-back`.
            """, underlying: error)
    }

    /// `file:line: SQLSTATE code: message (hint: …)`. The line is the server's position
    /// when it gives one; otherwise the first line of the failing statement: the one sent
    /// alone, or in a whole file the one the server counted to (its statements are split
    /// as the lexer splits them).
    private func describe(_ error: PostgresError, in script: MigrationScript, sentText: String, firstLine: Int) -> String {
        var location = script.path
        if let line = Self.line(of: error, sentText: sentText, firstLine: firstLine) {
            location += ":\(line)"
        } else if sentText != script.sql {
            location += ":\(firstLine)"
        } else if let index = error.statementIndex, script.statements.indices.contains(index) {
            location += ":\(script.statements[index].line)"
        }
        var text = "\(location): "
        if let state = error.sqlState { text += "SQLSTATE \(state.rawValue): " }
        text += error.message
        if let hint = error.hint { text += " (hint: \(hint))" }
        return text
    }

    /// The line of the server's error position, when it gives one: it counts characters
    /// from 1 within the text it was sent, which starts on `firstLine` of the file.
    static func line(of error: PostgresError, sentText: String, firstLine: Int) -> Int? {
        guard let position = error.position, position > 0 else { return nil }
        return firstLine + sentText.unicodeScalars.prefix(position - 1).lazy.filter { $0 == "\n" }.count
    }
}
