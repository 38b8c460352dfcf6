import LibPQ
import Logging

extension Migrator {
    /// Settles, without a person, what a failed file of one `CREATE INDEX CONCURRENTLY`
    /// left behind, so that `up` can go on. PostgreSQL leaves the index either valid (the
    /// build finished; the runner died or its connection broke before recording it) or
    /// INVALID (the build failed: a lock timeout, a duplicate in a unique index, a
    /// cancel). Valid: recorded applied. Invalid: dropped concurrently, and the file is
    /// pending again, to run anew. Absent: pending again. Called under the runner's lock.
    func recoverFailedIndexBuilds(files: [Migration], history: MigrationHistory, on connection: PostgresConnection) async throws {
        let failed = try await history.entries().filter { $0.outcome != .applied }
        let byVersion = Dictionary(files.map { ($0.version, $0) }, uniquingKeysWith: { a, _ in a })
        for entry in failed {
            guard let migration = byVersion[entry.version], migration.up.checksum == entry.checksum,
                  let index = Self.concurrentIndexName(of: migration.up) else { continue }
            let validity = try await connection.query("SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(\(index))").first.map { try $0[0, as: Bool.self] }
            let metadata: Logger.Metadata = ["migration.version": "\(entry.version)", "index": "\(index)"]
            switch validity {
            case true?:
                try await history.setOutcome(entry.version, .applied)
                logger.warning("a failed index build had finished: its index is valid, so the migration is recorded applied", metadata: metadata)
            case false?:
                // The name as the file wrote it: the file's own SQL, run as the file is.
                try await connection.simpleQuery(unsafeSQL: "DROP INDEX CONCURRENTLY IF EXISTS \(index)")
                try await history.remove(entry.version)
                logger.warning("a failed index build left an INVALID index: dropped it, and the migration runs again", metadata: metadata)
            case nil:
                try await history.remove(entry.version)
                logger.warning("a failed index build left no index: the migration runs again", metadata: metadata)
            }
        }
    }

    /// The index a file of exactly one `CREATE [UNIQUE] INDEX CONCURRENTLY` statement
    /// builds, as the file names it (quotes and schema included); nil for any other file.
    static func concurrentIndexName(of script: MigrationScript) -> String? {
        guard script.statements.count == 1, let statement = script.statements.first else { return nil }
        let words = statement.words
        guard words.starts(with: ["CREATE", "INDEX", "CONCURRENTLY"]) || words.starts(with: ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY"]) else { return nil }
        let pattern = /(?i)^\s*create\s+(?:unique\s+)?index\s+concurrently\s+(?:if\s+not\s+exists\s+)?((?:"[^"]+"|[A-Za-z_][A-Za-z0-9_$]*)(?:\.(?:"[^"]+"|[A-Za-z_][A-Za-z0-9_$]*))?)\s+on\s/
        return statement.text.firstMatch(of: pattern).map { String($0.1) }
    }
}
