import Foundation
import LibPQ

/// The session-level advisory lock that lets any number of runners start at once against
/// one database and apply each migration exactly once. Session-level, not
/// transaction-level: a transaction holding the lock would make CREATE INDEX CONCURRENTLY
/// wait for it forever.
struct MigrationLock {
    /// "STKR": the first key of the two-key advisory lock, so ours never collides with an
    /// application's single-key locks.
    static let classID: Int32 = 0x5354_4B52

    let connection: PostgresConnection
    /// The second key: a hash of the history table's schema and name, so runners of
    /// different schemas in one database do not wait for each other.
    let objectID: Int32

    static func key(on connection: PostgresConnection, for history: MigrationHistory) async throws -> Int32 {
        try await connection.query("SELECT hashtext(\(history.schema) || '.' || \(history.table))").first![0, as: Int32.self]
    }

    /// Waits up to `timeout` for the lock, then fails saying who holds it.
    func acquire(timeout: Duration) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while true {
            if try await tryAcquire() { return }
            if clock.now >= deadline { throw MigrationError(.lockTimeout, "another migration runner held the lock for over \(timeout): \(try await holder())") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Takes the lock if nobody holds it, without waiting.
    func tryAcquire() async throws -> Bool {
        try await connection.query("SELECT pg_try_advisory_lock(\(Self.classID), \(objectID))").first![0, as: Bool.self]
    }

    func release() async {
        _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.classID), \(objectID))")
    }

    /// Who holds the lock, as far as pg_stat_activity tells.
    private func holder() async throws -> String {
        let rows = try await connection.query("""
            SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.client_addr::text, 'local socket'), a.backend_start
            FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND l.classid = \(Int64(Self.classID))::oid AND l.objid = (\(Int64(objectID)) & 4294967295)::oid
            """)
        guard let row = rows.first else { return "it was released just now; try again" }
        let started = try row[3, as: Date.self].formatted(.iso8601)
        return "server process \(try row[0, as: Int32.self]) (application \"\(try row[1, as: String.self])\", from \(try row[2, as: String.self]), connected since \(started))"
    }
}
