import Foundation
import LibPQ
import Migrations
import Testing

@Suite("Runners at once, and migrations behind other work")
struct ConcurrencyTests {
    @Test func tenRunnersAtOnceApplyEachFileExactlyOnce() async throws {
        var files: [String: String] = ["0001_log.up.sql": "CREATE TABLE log (version int);\n"]
        for n in 2...6 {
            files["000\(n)_step.up.sql"] = "INSERT INTO log VALUES (\(n));\nSELECT pg_sleep(0.02);\n"
        }
        files["0007_index.up.sql"] = "CREATE INDEX CONCURRENTLY log_version ON log (version);\nINSERT INTO log VALUES (7);\n"
        let folder = try MigrationFolder(files)
        try await TestDatabase.withDatabase { url in
            let applied = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<10 { group.addTask { try await folder.migrator(url).up().count } }
                return try await group.reduce(0, +)
            }
            #expect(applied == 7)
            let connection = try await PostgresConnection.connect(url)
            #expect(try await connection.count("SELECT count(*) FROM log") == 6)
            #expect(try await connection.count("SELECT count(DISTINCT version) FROM log") == 6)
            #expect(try await connection.count("SELECT count(*) FROM stockroom_migrations WHERE outcome = 'applied'") == 7)
            await connection.close()
        }
    }

    @Test func aRunnerWaitingTooLongSaysWhoHoldsTheLock() async throws {
        let folder = try MigrationFolder(["1_a.up.sql": "CREATE TABLE a (id int);\n"])
        try await TestDatabase.withDatabase { url in
            let holder = try await PostgresConnection.connect(url + "?application_name=long-runner")
            try await holder.query("SELECT pg_advisory_lock(\(Int32(0x5354_4B52)), hashtext(current_schema() || '.' || 'stockroom_migrations'))")
            let error = await #expect(throws: MigrationError.self) {
                try await folder.migrator(url) { $0.lockWait = .milliseconds(300) }.up()
            }
            #expect(error?.code == .lockTimeout)
            #expect(error?.message.contains("long-runner") == true)
            #expect(error?.message.contains("\(holder.backendPID)") == true)
            await holder.close()
            #expect(try await folder.migrator(url).up().count == 1)
        }
    }

    @Test func aWaitingRunnerNamesTheRunnerThatHoldsTheLock() async throws {
        let folder = try MigrationFolder(["1_slow.up.sql": "SELECT pg_sleep(2);\n"])
        try await TestDatabase.withDatabase { url in
            let separator = url.contains("?") ? "&" : "?"
            let service = folder.migrator(url + separator + "application_name=inventory-api")
            let anonymous = folder.migrator(url) { $0.lockWait = .milliseconds(300) }
            let first = Task { try await service.up().count }
            // Wait until the first runner holds the lock and is inside the slow migration.
            let watcher = try await PostgresConnection.connect(url)
            while try await watcher.count("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep(2)%' AND state = 'active'") == 0 {
                try await Task.sleep(for: .milliseconds(20))
            }
            await watcher.close()
            let error = await #expect(throws: MigrationError.self) { try await anonymous.up() }
            #expect(error?.code == .lockTimeout)
            #expect(error?.message.contains("application \"inventory-api\"") == true, "the caller's own name is kept")
            #expect(try await first.value == 1)
        }
    }

    @Test func aMigrationBehindALongTransactionFailsFast() async throws {
        let folder = try MigrationFolder([
            "1_a.up.sql": "CREATE TABLE busy (id int);\n",
            "2_b.up.sql": "ALTER TABLE busy ADD COLUMN note text;\n",
        ])
        try await TestDatabase.withDatabase { url in
            try await folder.migrator(url).up(to: MigrationVersion("1")!)
            let blocker = try await PostgresConnection.connect(url)
            try await blocker.query("BEGIN")
            try await blocker.query("SELECT * FROM busy")  // holds ACCESS SHARE until it ends
            let clock = ContinuousClock()
            let start = clock.now
            let error = await #expect(throws: MigrationError.self) {
                try await folder.migrator(url) {
                    $0.lockTimeout = .milliseconds(200)
                    $0.lockRetries = 2
                    $0.lockRetryBackoff = .milliseconds(100)
                }.up()
            }
            // Three tries of 200 ms, pauses of about 100 and 200 ms, and for each try up to
            // a second for the watcher to name the blocker: the lock timeout and its
            // retries ended it, not the blocker, which holds on until the test ends.
            #expect(clock.now - start < .seconds(20), "the 200 ms lock timeout, not the blocker, ended it")
            #expect(error?.underlying?.sqlState == .lockNotAvailable)
            try await blocker.query("ROLLBACK")
            await blocker.close()
            #expect(try await folder.migrator(url).up().count == 1)
        }
    }
}
