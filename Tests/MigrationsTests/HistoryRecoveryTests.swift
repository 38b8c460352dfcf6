import Foundation
import LibPQ
import Migrations
import Testing

@Suite("The history says what happened, whatever the file did")
struct HistoryRecoveryTests {
    @Test func aFileWithOneBeginCommitThatFailsLeavesNoTrace() async throws {
        let folder = try MigrationFolder([
            "1_own.up.sql": "BEGIN;\nCREATE TABLE half (id int);\nINSERT INTO half VALUES ('not a number');\nCOMMIT;\n",
        ])
        try await TestDatabase.withDatabase { url in
            let migrator = folder.migrator(url)
            let error = await #expect(throws: MigrationError.self) { try await migrator.up() }
            // The server rolled the whole block back: a plain failure, not a state to resolve.
            #expect(error?.code == .migrationFailed)
            #expect(error?.message.contains("1_own.up.sql:3") == true)
            #expect(error?.underlying?.sqlState == .invalidTextRepresentation)
            #expect(try await migrator.states() == ["1": .pending])
            let connection = try await PostgresConnection.connect(url)
            #expect(try await !connection.exists("half"))
            await connection.close()
        }
    }

    @Test func aFileWithSeveralTransactionsThatFailsNeedsAPerson() async throws {
        let folder = try MigrationFolder([
            "1_two.up.sql": "BEGIN;\nCREATE TABLE first (id int);\nCOMMIT;\nBEGIN;\nCREATE TABLE first (id int);\nCOMMIT;\n",
        ])
        try await TestDatabase.withDatabase { url in
            let migrator = folder.migrator(url)
            let error = await #expect(throws: MigrationError.self) { try await migrator.up() }
            #expect(error?.code == .needsResolution)
            #expect(error?.message.contains("stockroom migrate resolve 1 --applied") == true)
            #expect(try await migrator.states() == ["1": .failed])
            // Refused again: the server's words once, the advice once.
            let refused = await #expect(throws: MigrationError.self) { try await migrator.up() }
            #expect(refused?.message.contains("1_two.up.sql:5: SQLSTATE 42P07: relation \"first\" already exists") == true)
            #expect(refused?.message.components(separatedBy: "--rolled-back").count == 2)
            try await migrator.resolve(MigrationVersion("1")!, as: .applied)
            #expect(try await migrator.states() == ["1": .applied])
        }
    }

    /// A file fixed by hand after a failure, then resolved as applied: its checksum now is
    /// the one recorded, so the next `up` does not refuse it as modified.
    @Test func resolvingAsAppliedRecordsTheFileAsItIsNow() async throws {
        let folder = try MigrationFolder([
            "1_two.up.sql": "BEGIN;\nCREATE TABLE first (id int);\nCOMMIT;\nBEGIN;\nCREATE TABLE first (id int);\nCOMMIT;\n",
        ])
        try await TestDatabase.withDatabase { url in
            let migrator = folder.migrator(url)
            await #expect(throws: MigrationError.self) { try await migrator.up() }
            try folder.write("1_two.up.sql", "BEGIN;\nCREATE TABLE first (id int);\nCOMMIT;\n")
            try await migrator.resolve(MigrationVersion("1")!, as: .applied)
            #expect(try await migrator.states() == ["1": .applied])
            #expect(try await migrator.up().isEmpty)
        }
    }

    /// In a file run statement by statement, a BEGIN … COMMIT block whose statement fails
    /// leaves the connection in a failed transaction: the failure must still be recorded,
    /// and reported as the server's own error, not as 25P02.
    @Test func aFailedBlockInANoTransactionFileReportsItsOwnError() async throws {
        let folder = try MigrationFolder([
            "1_mixed.up.sql": "CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY t_id ON t (id);\nBEGIN;\nINSERT INTO t VALUES ('not a number');\nCOMMIT;\n",
        ])
        try await TestDatabase.withDatabase { (url: String) async throws -> Void in
            let migrator = folder.migrator(url)
            let error = await #expect(throws: MigrationError.self) { try await migrator.up() }
            #expect(error?.code == .needsResolution)
            #expect(error?.underlying?.sqlState == .invalidTextRepresentation)
            #expect(error?.message.contains("1_mixed.up.sql:4") == true)
            #expect(try await migrator.states() == ["1": .failed])
        }
    }

    @Test func aFileThatNeverEndsItsBeginIsRefusedBeforeItRuns() async throws {
        let folder = try MigrationFolder(["1_open.up.sql": "-- forgot the COMMIT\nBEGIN;\nCREATE TABLE t (id int);\n"])
        try await TestDatabase.withDatabase { url in
            let error = await #expect(throws: MigrationError.self) { try await folder.migrator(url).up() }
            #expect(error?.code == .unsupportedStatement)
            #expect(error?.message.contains("1_open.up.sql:2: this BEGIN is never ended") == true)
            let connection = try await PostgresConnection.connect(url)
            #expect(try await !connection.exists("t"))
            await connection.close()
        }
    }

    @Test func aFailedNoTransactionDownKeepsTheVersionUntilResolved() async throws {
        let folder = try MigrationFolder([
            "1_t.up.sql": "CREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n",
            "1_t.down.sql": "DROP INDEX CONCURRENTLY t_id;\nDROP INDEX CONCURRENTLY no_such_index;\nDROP TABLE t;\n",
        ])
        try await TestDatabase.withDatabase { url in
            let migrator = folder.migrator(url)
            try await migrator.up()
            let applied = try #require(try await migrator.status().first?.appliedAt)
            let error = await #expect(throws: MigrationError.self) { try await migrator.down(.all) }
            #expect(error?.code == .needsResolution)
            #expect(error?.message.contains("1_t.down.sql:2") == true)
            #expect(try await migrator.states() == ["1": .failed])
            let refused = await #expect(throws: MigrationError.self) { try await migrator.down(.all) }
            #expect(refused?.code == .needsResolution)

            // The person finishes the down by hand and says so: the version is forgotten.
            let connection = try await PostgresConnection.connect(url)
            #expect(try await !connection.exists("t_id"))
            try await connection.query("DROP TABLE t")
            await connection.close()
            try await migrator.resolve(MigrationVersion("1")!, as: .rolledBack)
            #expect(try await migrator.states() == ["1": .pending])
            #expect(try await migrator.up().count == 1)
            #expect(try await migrator.status().first?.appliedAt ?? applied > applied)
        }
    }

    @Test func aDownThatFailsInsideItsOwnTransactionStaysApplied() async throws {
        let folder = try MigrationFolder([
            "1_t.up.sql": "CREATE TABLE t (id int);\n",
            "1_t.down.sql": "BEGIN;\nDROP TABLE t;\nDROP TABLE no_such_table;\nCOMMIT;\n",
        ])
        try await TestDatabase.withDatabase { url in
            let migrator = folder.migrator(url)
            try await migrator.up()
            let appliedAt = try await migrator.status().first?.appliedAt
            let error = await #expect(throws: MigrationError.self) { try await migrator.down(.all) }
            #expect(error?.code == .migrationFailed)
            let status = try await migrator.status()
            #expect(status.map(\.state) == [.applied])
            #expect(status.first?.appliedAt == appliedAt, "the row keeps when it was applied")
            let connection = try await PostgresConnection.connect(url)
            #expect(try await connection.exists("t"))
            await connection.close()
        }
    }

    @Test func statusTellsAMigrationInProgressFromOneWhoseRunnerDied() async throws {
        let folder = try MigrationFolder(["1_slow.up.sql": "-- stockroom:no-transaction\nSELECT pg_sleep(1.5);\n"])
        try await TestDatabase.withDatabase { url in
            let migrator = folder.migrator(url)
            let running = Task { try await migrator.up().count }
            var seen: [String: MigrationStatus.State] = [:]
            for _ in 0..<100 where seen != ["1": .running] {
                seen = try await migrator.states()
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(seen == ["1": .running], "seen from outside while the other runner works")
            #expect(try await running.value == 1)
            #expect(try await migrator.states() == ["1": .applied])

            // A row left `running` with nobody holding the lock: its runner died.
            let connection = try await PostgresConnection.connect(url)
            try await connection.query("UPDATE stockroom_migrations SET outcome = 'running'")
            await connection.close()
            #expect(try await migrator.states() == ["1": .failed])
            let refused = await #expect(throws: MigrationError.self) { try await migrator.up() }
            #expect(refused?.message.contains("its runner stopped before it finished") == true)
        }
    }

    @Test func theServersErrorsOutsideAMigrationAreMigrationErrorsToo() async throws {
        let folder = try MigrationFolder(["1_t.up.sql": "CREATE TABLE t (id int);\n"])
        try await TestDatabase.withDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            try await connection.query("CREATE TABLE stockroom_migrations (something_else int)")
            await connection.close()
            let error = await #expect(throws: MigrationError.self) { try await folder.migrator(url).up() }
            #expect(error?.code == .database)
            #expect(error?.underlying?.sqlState == .undefinedColumn)
        }
    }

    /// A rolling deploy: the new binary applied version 2; an old instance, whose folder
    /// stops at 1, restarts with `serve --migrate` meanwhile. It must start, not refuse.
    @Test func versionsANewerBinaryAppliedAreToleratedByUpButNotByDown() async throws {
        let new = try MigrationFolder(["1_a.up.sql": "CREATE TABLE a (id int);\n", "2_b.up.sql": "CREATE TABLE b (id int);\n"])
        let old = try MigrationFolder(["1_a.up.sql": "CREATE TABLE a (id int);\n", "1_a.down.sql": "DROP TABLE a;\n"])
        let gap = try MigrationFolder(["2_b.up.sql": "CREATE TABLE b (id int);\n"])
        try await TestDatabase.withDatabase { (url: String) async throws -> Void in
            #expect(try await new.migrator(url).up().count == 2)
            let oldMigrator = old.migrator(url)
            #expect(try await oldMigrator.up().isEmpty)
            #expect(try await oldMigrator.states() == ["1": .applied, "2": .newer])
            #expect(try await oldMigrator.verify().isEmpty)
            // It cannot undo what it has no file for, nor roll back under it.
            let down = await #expect(throws: MigrationError.self) { try await oldMigrator.down(.all) }
            #expect(down?.message.contains("newer binary") == true)
            // A version below the binary's newest file with its file gone is still missing.
            let missing = await #expect(throws: MigrationError.self) { try await gap.migrator(url).up() }
            #expect(missing?.code == .missingFile)
        }
    }

    /// The contract phase of an expand/contract change marks itself: once applied, a
    /// binary without it refuses to migrate (or start with `serve --migrate`), where one
    /// behind a harmless newer version goes on.
    @Test func aNewerMigrationThatBreaksOlderBinariesStopsThem() async throws {
        let new = try MigrationFolder([
            "1_a.up.sql": "CREATE TABLE a (id int, note text);\n",
            "2_b.up.sql": "-- Contract: the old binary still writes a.note.\n-- stockroom:breaks-older-binaries\nALTER TABLE a DROP COLUMN note;\n",
        ])
        let old = try MigrationFolder(["1_a.up.sql": "CREATE TABLE a (id int, note text);\n"])
        try await TestDatabase.withDatabase { (url: String) async throws -> Void in
            #expect(try await old.migrator(url).up().count == 1)
            #expect(try await new.migrator(url).up().count == 1)
            for attempt in [{ try await old.migrator(url).up() }, { try await old.migrator(url).ensureSchema() }] {
                let error = await #expect(throws: MigrationError.self) { _ = try await attempt() }
                #expect(error?.code == .newerBinaryRequired)
                #expect(error?.message.contains("version 2 (b)") == true)
            }
            #expect(try await old.migrator(url).status().last?.breaksOlderBinaries == true)
            #expect(try await new.migrator(url).ensureSchema().isEmpty)
        }
    }

    /// A history table made by an earlier runner, without breaks_older_binaries, is read
    /// as it is by `status` and gains the column at the next `up`.
    @Test func aHistoryTableOfAnEarlierRunnerGainsTheColumn() async throws {
        let folder = try MigrationFolder(["1_a.up.sql": "CREATE TABLE a (id int);\n", "2_b.up.sql": "CREATE TABLE b (id int);\n"])
        try await TestDatabase.withDatabase { (url: String) async throws -> Void in
            let connection = try await PostgresConnection.connect(url)
            let checksum = try MigrationDirectory.load(folder.url)[0].up.checksum
            try await connection.query("CREATE TABLE a (id int)")
            try await connection.simpleQuery(unsafeSQL: """
                CREATE TABLE stockroom_migrations (
                    version text PRIMARY KEY, title text NOT NULL, checksum text NOT NULL, outcome text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now(), duration_ms bigint, error text);
                INSERT INTO stockroom_migrations (version, title, checksum, outcome) VALUES ('1', 'a', '\(checksum)', 'applied');
                """)
            let migrator = folder.migrator(url)
            #expect(try await migrator.states() == ["1": .applied, "2": .pending])
            #expect(try await migrator.up().map(\.version.digits) == ["2"])
            #expect(try await connection.count("SELECT count(*) FROM pg_attribute WHERE attrelid = 'stockroom_migrations'::regclass AND attname = 'breaks_older_binaries'") == 1)
            #expect(try await migrator.up().isEmpty)
            await connection.close()
        }
    }

    /// N instances starting at once: once the schema is new enough, the others return
    /// without queueing for the runner's lock.
    @Test func ensureSchemaSkipsTheLockWhenNothingIsPending() async throws {
        let folder = try MigrationFolder(["1_a.up.sql": "CREATE TABLE a (id int);\n"])
        try await TestDatabase.withDatabase { (url: String) async throws -> Void in
            // Waiting for the lock would take this one its whole 20 s, then fail.
            let migrator = folder.migrator(url) { $0.lockWait = .seconds(20) }
            #expect(try await migrator.ensureSchema().count == 1)
            // Another runner holds the lock (a long migration of a newer deploy, say).
            let holder = try await PostgresConnection.connect(url)
            let key = try await holder.query("SELECT hashtext('public' || '.' || 'stockroom_migrations')").first![0, as: Int32.self]
            try await holder.query("SELECT pg_advisory_lock(\(Int32(0x53544B52)), \(key))")
            let start = ContinuousClock.now
            #expect(try await migrator.ensureSchema().isEmpty)
            #expect(ContinuousClock.now - start < .seconds(10))
            // With something pending it does queue, and gives up after lockWait.
            try folder.write("2_b.up.sql", "CREATE TABLE b (id int);\n")
            let impatient = folder.migrator(url) { $0.lockWait = .milliseconds(300) }
            let waited = await #expect(throws: MigrationError.self) { try await impatient.ensureSchema() }
            #expect(waited?.code == .lockTimeout)
            await holder.close()
            #expect(try await migrator.ensureSchema().count == 1)
        }
    }

    /// A database made by hand is adopted: the files up to the baseline are recorded as
    /// applied without running, the later ones run; a database with a history is refused.
    @Test func baselineAdoptsADatabaseMadeByHand() async throws {
        let folder = try MigrationFolder(["1_a.up.sql": "CREATE TABLE a (id int);\n", "2_b.up.sql": "CREATE TABLE b (id int);\n", "3_c.up.sql": "CREATE TABLE c (id int);\n"])
        try await TestDatabase.withDatabase { (url: String) async throws -> Void in
            let connection = try await PostgresConnection.connect(url)
            try await connection.query("CREATE TABLE a (id int)")
            try await connection.query("CREATE TABLE b (id int)")
            let migrator = folder.migrator(url)
            #expect(try await migrator.baseline(through: MigrationVersion("2")!).map(\.digits) == ["1", "2"])
            #expect(try await migrator.states() == ["1": .applied, "2": .applied, "3": .pending])
            #expect(try await migrator.up().map(\.version.digits) == ["3"])
            #expect(try await connection.exists("c"))
            await #expect(throws: MigrationError.self) { try await migrator.baseline(through: MigrationVersion("3")!) }
            await connection.close()
        }
    }

    /// A one-statement CIC file that failed needs no person: an INVALID index it left is
    /// dropped and the file runs again; a valid one means the build finished.
    @Test func aFailedIndexBuildIsRecoveredByTheNextRun() async throws {
        let folder = try MigrationFolder([
            "1_t.up.sql": "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1), (1);\n",
            "2_t_id.up.sql": "-- stockroom:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY \"T_id\" ON t (id);\n",
        ])
        try await TestDatabase.withDatabase { (url: String) async throws -> Void in
            let migrator = folder.migrator(url)
            // The duplicate makes the unique build fail, leaving an INVALID index.
            let error = await #expect(throws: MigrationError.self) { try await migrator.up() }
            #expect(error?.code == .needsResolution)
            let connection = try await PostgresConnection.connect(url)
            #expect(try await connection.query("SELECT indisvalid FROM pg_index WHERE indexrelid = '\"T_id\"'::regclass").first?[0, as: Bool.self] == false)
            // Fixed at the source; the next run drops the invalid index and builds it anew.
            try await connection.query("DELETE FROM t WHERE ctid = (SELECT max(ctid) FROM t)")
            #expect(try await migrator.up().map(\.version.digits) == ["2"])
            #expect(try await connection.query("SELECT indisvalid FROM pg_index WHERE indexrelid = '\"T_id\"'::regclass").first?[0, as: Bool.self] == true)
            #expect(try await migrator.states() == ["1": .applied, "2": .applied])
            // A build that finished but was not recorded (the runner died) is recorded.
            try await connection.query("UPDATE stockroom_migrations SET outcome = 'failed' WHERE version = '2'")
            #expect(try await migrator.up().isEmpty)
            #expect(try await migrator.states() == ["1": .applied, "2": .applied])
            await connection.close()
        }
    }

    /// The runner's session checks that its client is alive, so that a runner killed
    /// mid-statement does not leave the statement running with its locks.
    @Test func theRunnersSessionNoticesADeadClient() async throws {
        let folder = try MigrationFolder(["1_s.up.sql": "CREATE TABLE s AS SELECT current_setting('client_connection_check_interval') AS v;\n"])
        try await TestDatabase.withDatabase { (url: String) async throws -> Void in
            try await folder.migrator(url).up()
            let connection = try await PostgresConnection.connect(url)
            #expect(try await connection.query("SELECT v FROM s").first?[0, as: String.self] == "1s")
            await connection.close()
        }
    }

    /// A file that gave up on `lock_timeout` rolled back whole, so it is run again after
    /// a pause, and goes through once the lock's holder is done.
    @Test func aFileThatTimedOutOnALockIsRetriedUntilTheLockIsFree() async throws {
        let folder = try MigrationFolder(["1_t.up.sql": "CREATE TABLE t (id int);\n", "2_x.up.sql": "ALTER TABLE t ADD COLUMN x int;\n"])
        try await TestDatabase.withDatabase { (url: String) async throws -> Void in
            let quick: (inout Migrator.Configuration) -> Void = {
                $0.lockTimeout = .milliseconds(200)
                $0.lockRetryBackoff = .milliseconds(300)
            }
            #expect(try await folder.migrator(url, quick).up(to: MigrationVersion("1")!).count == 1)
            let holder = try await PostgresConnection.connect(url)
            try await holder.query("BEGIN")
            try await holder.query("LOCK TABLE t IN ACCESS SHARE MODE")
            // Without retries, the lock timeout ends the run; nothing of the file remains.
            let refused = await #expect(throws: MigrationError.self) { try await folder.migrator(url) { quick(&$0); $0.lockRetries = 0 }.up() }
            #expect(refused?.underlying?.sqlState == .lockNotAvailable)
            #expect(try await folder.migrator(url).states() == ["1": .applied, "2": .pending])
            // With them, it goes through once the holder lets go, a second from now.
            let release = Task {
                try await Task.sleep(for: .seconds(1))
                try await holder.query("ROLLBACK")
            }
            let start = ContinuousClock.now
            #expect(try await folder.migrator(url, quick).up().count == 1)
            #expect(ContinuousClock.now - start >= .milliseconds(900))
            try await release.value
            await holder.close()
        }
    }

    /// A run cancelled (as SIGTERM does to `stockroom migrate`) cancels its statement on
    /// the server — a killed runner would leave it running, holding its locks — and the
    /// history says where it stopped.
    @Test func aCancelledRunCancelsItsStatementAndRecordsWhereItStopped() async throws {
        let folder = try MigrationFolder(["1_slow.up.sql": "-- stockroom:no-transaction\nSELECT pg_sleep(30);\n"])
        try await TestDatabase.withDatabase { (url: String) async throws -> Void in
            let migrator = folder.migrator(url)
            let run = Task { try await migrator.up() }
            let watcher = try await PostgresConnection.connect(url)
            func sleeping() async throws -> Int {
                try await watcher.count("SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30);' AND pid <> pg_backend_pid()")
            }
            for _ in 0..<200 where try await sleeping() == 0 { try await Task.sleep(for: .milliseconds(10)) }
            let start = ContinuousClock.now
            run.cancel()
            let error = await #expect(throws: MigrationError.self) { try await run.value }
            #expect(ContinuousClock.now - start < .seconds(3))
            #expect(error?.code == .needsResolution)
            #expect(error?.message.contains("1_slow.up.sql:2: SQLSTATE 57014: the run was cancelled") == true)
            #expect(try await sleeping() == 0)
            #expect(try await migrator.states() == ["1": .failed])
            await watcher.close()
        }
    }

    /// By default the history is in `public` whatever the search path: a role whose
    /// search path starts with a schema of its own shares the one history (and the one
    /// runner lock) with everyone else.
    @Test func theHistoryIsInOneSchemaWhateverTheSearchPath() async throws {
        let folder = try MigrationFolder(["1_t.up.sql": "CREATE TABLE t (id int);\n"])
        try await TestDatabase.withDatabase { (url: String) async throws -> Void in
            let connection = try await PostgresConnection.connect(url)
            try await connection.query("CREATE SCHEMA deployer")
            let separator = url.contains("?") ? "&" : "?"
            let deployer = folder.migrator(url + separator + "options=-csearch_path%3Ddeployer,public")
            #expect(try await deployer.up().count == 1)
            #expect(try await connection.exists("public.stockroom_migrations"))
            #expect(try await !connection.exists("deployer.stockroom_migrations"))
            // Another search path sees the same history: nothing left to apply.
            #expect(try await folder.migrator(url).states() == ["1": .applied])
            let elsewhere = folder.migrator(url) { $0.historySchema = "no_such_schema" }
            let error = await #expect(throws: MigrationError.self) { try await elsewhere.up() }
            #expect(error?.message.contains("--history-schema") == true)
            // A history an older runner kept in the search path's first schema is not
            // ignored (every file would run again): the runner says where it is.
            try await connection.query("CREATE SCHEMA legacy")
            let legacyURL = url + separator + "options=-csearch_path%3Dlegacy"
            #expect(try await folder.migrator(legacyURL) { $0.historySchema = nil }.up().count == 1)
            let refused = await #expect(throws: MigrationError.self) { try await folder.migrator(legacyURL) { $0.historySchema = "deployer" }.up() }
            #expect(refused?.message.contains("--history-schema legacy") == true)
            await connection.close()
        }
    }

    @Test func eachSchemaOfTheSearchPathKeepsItsOwnHistory() async throws {
        let folder = try MigrationFolder(["1_t.up.sql": "CREATE TABLE t (id int);\n"])
        try await TestDatabase.withDatabase { url in
            let connection = try await PostgresConnection.connect(url)
            try await connection.query("CREATE SCHEMA tenant_a")
            try await connection.query("CREATE SCHEMA tenant_b")
            // A history table further down the search path must not stand in for the
            // tenant's own.
            try await folder.migrator(url).up()
            #expect(try await connection.exists("public.stockroom_migrations"))

            let separator = url.contains("?") ? "&" : "?"
            for tenant in ["tenant_a", "tenant_b"] {
                let tenantURL = url + separator + "options=-csearch_path%3D\(tenant),public"
                let migrator = folder.migrator(tenantURL) { $0.historySchema = nil }
                #expect(try await migrator.states() == ["1": .pending])
                #expect(try await migrator.up().count == 1)
                #expect(try await migrator.states() == ["1": .applied])
                #expect(try await connection.exists("\(tenant).t"))
                #expect(try await connection.exists("\(tenant).stockroom_migrations"))
            }
            #expect(try await connection.count("SELECT count(*) FROM public.stockroom_migrations") == 1)

            // A search path without any existing schema has nowhere to keep the history.
            let nowhere = folder.migrator(url + separator + "options=-csearch_path%3Dno_such_schema") { $0.historySchema = nil }
            let error = await #expect(throws: MigrationError.self) { try await nowhere.up() }
            #expect(error?.message.contains("search_path") == true)
            await connection.close()
        }
    }
}
