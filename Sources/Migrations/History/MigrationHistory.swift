import Foundation
import LibPQ

/// The history table, in the schema the configuration names (`public` by default) or,
/// when it names none, in the connection's current schema (the first of its search path
/// that exists), so that each schema — say, one per tenant — has a history of its own.
/// The name is qualified with that schema from then on: a table of the same name further
/// down the search path, or a migration that changes the search path, cannot stand in
/// for it.
struct MigrationHistory {
    let connection: PostgresConnection
    let schema: String
    let table: String

    /// The history in `schema`, or in `connection`'s current schema when nil.
    static func open(on connection: PostgresConnection, schema named: String?, table: String) async throws -> MigrationHistory {
        if let named {
            guard try await connection.query("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = \(named))").first![0, as: Bool.self] else {
                throw MigrationError(.database, "schema \(named), where the history table \(table) is kept, does not exist; create it or choose another with --history-schema")
            }
            // A history kept in the search path's schema by an earlier runner, and none
            // here: running every file again would be a disaster; say where it is.
            let elsewhere = try await connection.query("""
                SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relname = \(table) AND c.relkind = 'r' AND n.nspname = current_schema()
                  AND n.nspname <> \(named)
                  AND NOT EXISTS (SELECT 1 FROM pg_class c2 JOIN pg_namespace n2 ON n2.oid = c2.relnamespace
                                  WHERE c2.relname = \(table) AND n2.nspname = \(named))
                """).first.map { try $0[0, as: String.self] }
            if let elsewhere {
                throw MigrationError(.database, "the history table \(table) is in schema \(elsewhere), the first of the search path, and not in \(named); pass --history-schema \(elsewhere) (or set historySchema) to use it")
            }
            return MigrationHistory(connection: connection, schema: named, table: table)
        }
        guard let schema = try await connection.query("SELECT current_schema()").first![0, as: String?.self] else {
            throw MigrationError(.database, "no schema of the search path exists, so there is nowhere to keep the history table \(table); create the schema or fix search_path")
        }
        return MigrationHistory(connection: connection, schema: schema, table: table)
    }

    /// Creates the table when it does not exist. Called only under the runner's lock.
    func create() async throws {
        guard try await !exists() else {
            // Tables made before the column get it: a constant default, no rewrite. Looked
            // up first: ALTER TABLE takes its ACCESS EXCLUSIVE lock (blocking `status`
            // readers) even when IF NOT EXISTS then finds nothing to do.
            let hasColumn = try await connection.query("""
                SELECT EXISTS (SELECT 1 FROM pg_attribute
                               WHERE attrelid = to_regclass(\(PostgresQuery.quoteIdentifier(schema) + "." + PostgresQuery.quoteIdentifier(table)))
                                 AND attname = 'breaks_older_binaries' AND NOT attisdropped)
                """).first![0, as: Bool.self]
            if !hasColumn {
                try await connection.query("ALTER TABLE \(identifier: schema).\(identifier: table) ADD COLUMN breaks_older_binaries boolean NOT NULL DEFAULT false")
            }
            return
        }
        try await connection.query("""
            CREATE TABLE IF NOT EXISTS \(identifier: schema).\(identifier: table) (
                version     text PRIMARY KEY CHECK (version ~ '^[0-9]+$'),
                title       text NOT NULL,
                checksum    text NOT NULL,
                outcome     text NOT NULL CHECK (outcome IN ('running', 'applied', 'failed')),
                applied_at  timestamptz NOT NULL DEFAULT now(),
                duration_ms bigint,
                error       text,
                breaks_older_binaries boolean NOT NULL DEFAULT false
            )
            """)
    }

    /// Every row; none when the table does not exist yet (a database never migrated).
    func entries() async throws -> [HistoryEntry] {
        guard try await exists() else { return [] }
        // Through to_jsonb, so that a table made before breaks_older_binaries reads too
        // (status and verify never alter it).
        let rows = try await connection.query("""
            SELECT version, title, checksum, outcome, applied_at, duration_ms, error,
                   coalesce((to_jsonb(h) ->> 'breaks_older_binaries')::bool, false)
            FROM \(identifier: schema).\(identifier: table) h
            """)
        return try rows.map { row in
            HistoryEntry(
                version: MigrationVersion(try row[0, as: String.self])!,
                title: try row[1, as: String.self],
                checksum: try row[2, as: String.self],
                outcome: HistoryEntry.Outcome(rawValue: try row[3, as: String.self]) ?? .failed,
                appliedAt: try row[4, as: Date.self],
                duration: try row[5, as: Int64?.self].map { .milliseconds($0) },
                error: try row[6, as: String?.self],
                breaksOlderBinaries: try row[7, as: Bool.self]
            )
        }
    }

    func exists() async throws -> Bool {
        try await connection.query("SELECT to_regclass(\(PostgresQuery.quoteIdentifier(schema) + "." + PostgresQuery.quoteIdentifier(table))) IS NOT NULL").first![0, as: Bool.self]
    }

    func record(_ migration: Migration, outcome: HistoryEntry.Outcome, duration: Duration?, error: String? = nil) async throws {
        let milliseconds = duration.map { Int64($0.components.seconds * 1000 + $0.components.attoseconds / 1_000_000_000_000_000) }
        try await connection.query("""
            INSERT INTO \(identifier: schema).\(identifier: table) (version, title, checksum, outcome, duration_ms, error, breaks_older_binaries)
            VALUES (\(migration.version.digits), \(migration.title), \(migration.up.checksum), \(outcome.rawValue), \(milliseconds), \(error), \(migration.up.breaksOlderBinaries))
            ON CONFLICT (version) DO UPDATE SET title = EXCLUDED.title, checksum = EXCLUDED.checksum, outcome = EXCLUDED.outcome,
                applied_at = now(), duration_ms = EXCLUDED.duration_ms, error = EXCLUDED.error,
                breaks_older_binaries = EXCLUDED.breaks_older_binaries
            """)
    }

    /// Changes the outcome of an existing row, keeping when it was applied, and its
    /// checksum unless given a new one.
    @discardableResult
    func setOutcome(_ version: MigrationVersion, _ outcome: HistoryEntry.Outcome, error: String? = nil, checksum: String? = nil) async throws -> Bool {
        try await connection.query("""
            UPDATE \(identifier: schema).\(identifier: table)
            SET outcome = \(outcome.rawValue), error = \(error), checksum = coalesce(\(checksum), checksum)
            WHERE version = \(version.digits)
            """).affectedRows == 1
    }

    @discardableResult
    func remove(_ version: MigrationVersion) async throws -> Bool {
        try await connection.query("DELETE FROM \(identifier: schema).\(identifier: table) WHERE version = \(version.digits)").affectedRows == 1
    }
}
