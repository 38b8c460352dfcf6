import Foundation
import LibPQ

extension Migrator {
    /// Runs one script of `migration` — its up script when `recording`, else its down
    /// script — and keeps the history in step. Returns how long it took.
    func run(_ script: MigrationScript, of migration: Migration, on connection: PostgresConnection, history: MigrationHistory, recording: Bool) async throws -> Duration {
        let clock = ContinuousClock()
        let start = clock.now
        func done(_ connection: PostgresConnection) async throws {
            if recording {
                try await history.record(migration, outcome: .applied, duration: clock.now - start)
            } else {
                _ = try await history.remove(migration.version)
            }
        }

        switch script.mode {
        case .transaction:
            // The file and its history row commit together, or neither does. The file goes
            // whole through the simple query protocol, as psql would send it.
            do {
                try await connection.withTransaction { connection in
                    if !script.isEmpty { try await connection.simpleQuery(unsafeSQL: script.sql) }
                    try await done(connection)
                }
            } catch let error as PostgresError {
                throw failure(script, error, sentText: script.sql, firstLine: 1, partial: false)
            }

        case .ownTransaction:
            // The file brings its own BEGIN/COMMIT, so it cannot be wrapped in ours. A
            // "running" row first: if this process dies, the next runner sees it failed.
            try await history.record(migration, outcome: .running, duration: nil)
            do {
                try await connection.simpleQuery(unsafeSQL: script.sql)
            } catch let error as PostgresError {
                _ = try? await connection.simpleQuery(unsafeSQL: "ROLLBACK")
                let failure = failure(script, error, sentText: script.sql, firstLine: 1, partial: true)
                try await history.record(migration, outcome: .failed, duration: clock.now - start, error: failure.message)
                throw failure
            }
            try await done(connection)

        case .noTransaction:
            // Statements one at a time: in one multi-statement string PostgreSQL would run
            // them in an implicit transaction, which these statements refuse.
            try await history.record(migration, outcome: .running, duration: nil)
            for statement in script.statements {
                do {
                    try await connection.simpleQuery(unsafeSQL: statement.text)
                } catch let error as PostgresError {
                    let failure = failure(script, error, sentText: statement.text, firstLine: statement.line, partial: true)
                    try await history.record(migration, outcome: .failed, duration: clock.now - start, error: failure.message)
                    throw failure
                }
            }
            try await done(connection)
        }
        return clock.now - start
    }

    /// The error for a failed script: the file, the line, the SQLSTATE and the server's
    /// message; for a script that ran outside our transaction, how to resolve it.
    private func failure(_ script: MigrationScript, _ error: PostgresError, sentText: String, firstLine: Int, partial: Bool) -> MigrationError {
        var location = script.path
        if let position = error.position, position > 0 {
            let newlines = sentText.unicodeScalars.prefix(position - 1).lazy.filter { $0 == "\n" }.count
            location += ":\(firstLine + newlines)"
        } else if sentText != script.sql {
            location += ":\(firstLine)"  // one statement of several: at least its line
        }
        var message = "\(location): "
        if let state = error.sqlState { message += "SQLSTATE \(state.rawValue): " }
        message += error.message
        if let hint = error.hint { message += " (hint: \(hint))" }
        guard partial else {
            message += ". Nothing of it was applied."
            return MigrationError(.migrationFailed, message, underlying: error)
        }
        message += ". It ran outside a transaction, so statements before the failing one may have taken effect; fix the database by hand, then run `stockroom migrate resolve <version> --applied` or `--rolled-back`."
        return MigrationError(.needsResolution, message, underlying: error)
    }
}
