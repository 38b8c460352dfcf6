import Foundation
import LibPQ
import Migrations
import Testing

@Suite("Naming who blocks a migration")
struct BlockerTests {
    /// The server forgets who blocked a statement once it gives up waiting, so the
    /// runner's watcher must have asked while it waited.
    @Test func aLockTimeoutNamesTheSessionThatHeldTheLock() async throws {
        let folder = try MigrationFolder(["1_t.up.sql": "CREATE TABLE t (id int);\n", "2_x.up.sql": "ALTER TABLE t ADD COLUMN x int;\n"])
        try await TestDatabase.withDatabase { (url: String) async throws -> Void in
            try await folder.migrator(url).up(to: MigrationVersion("1")!)
            let blocker = try await PostgresConnection.connect(url + "?application_name=blocker-under-test")
            try await blocker.query("BEGIN")
            try await blocker.query("LOCK TABLE t")
            let error = await #expect(throws: MigrationError.self) {
                try await folder.migrator(url) {
                    // The watcher's first look comes at 1 s; the rest is room for a
                    // machine loaded by the rest of the suite.
                    $0.lockTimeout = .seconds(3)
                    $0.lockRetries = 0
                }.up()
            }
            #expect(error?.code == .migrationFailed)
            #expect(error?.underlying?.sqlState == .lockNotAvailable)
            #expect(error?.message.contains("blocked by pid \(blocker.backendPID) (application \"blocker-under-test\"") == true, "\(error?.message ?? "")")
            #expect(error?.message.contains("idle in transaction") == true)
            #expect(error?.message.contains("LOCK TABLE") == false, "never another session's SQL")
            try await blocker.query("ROLLBACK")
            await blocker.close()
            #expect(try await folder.migrator(url).states() == ["1": .applied, "2": .pending])
        }
    }
}
