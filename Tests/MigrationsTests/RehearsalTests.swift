import Foundation
import LibPQ
import Migrations
import Testing

@Suite("Rehearsing pending migrations in a transaction that is rolled back")
struct RehearsalTests {
    /// The report for each kind of change — a lock that blocks writes, one that blocks
    /// everything, a rewrite, a new table — and a database left exactly as it was.
    @Test func eachFileReportsItsLocksRewritesAndRowsAndNothingChanges() async throws {
        let folder = try MigrationFolder([
            // Analyzed here, so that no autovacuum worker comes to analyze it while the test's
            // database is dropped (DROP DATABASE … FORCE may not end that worker).
            "1_t.up.sql": "CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL);\nINSERT INTO t SELECT g, g FROM generate_series(1, 1000) g;\nANALYZE t;\n",
            "2_index.up.sql": "CREATE INDEX t_n_idx ON t (n);\n",
            "3_note.up.sql": "ALTER TABLE t ADD COLUMN note text;\n",
            "4_widen.up.sql": "-- n outgrows int\nALTER TABLE t ALTER COLUMN n TYPE bigint;\n",
            "5_u.up.sql": "CREATE TABLE u (id int PRIMARY KEY, label text);\n",
        ])
        try await TestDatabase.withDatabase { (url: String) async throws -> Void in
            let migrator = folder.migrator(url)
            try await migrator.up(to: MigrationVersion("1")!)
            let schema = try await schemaDump(url)
            #expect(try await migrator.pending().map(\.version.digits) == ["2", "3", "4", "5"])

            let rehearsals = try await migrator.rehearse()
            #expect(rehearsals.map(\.version.digits) == ["2", "3", "4", "5"])
            #expect(rehearsals.allSatisfy { $0.outcome == .rehearsed }, "\(rehearsals.map(\.outcome))")

            // CREATE INDEX: SHARE on the table (writes wait), and the new index.
            let index = rehearsals[0]
            let onT = try #require(index.locks.first { $0.relation == "public.t" })
            #expect(onT.mode == .share && onT.kind == .table && onT.line == 1)
            #expect(onT.existedBefore && !onT.rewritten && !onT.heldByEarlierFile)
            #expect(onT.rows == 1000 && !onT.rowsEstimated)
            #expect((onT.bytes ?? 0) >= 8192)
            let newIndex = try #require(index.locks.first { $0.relation == "public.t_n_idx" })
            #expect(newIndex.kind == .index && !newIndex.existedBefore && newIndex.rows == nil && newIndex.bytes == nil)
            #expect(index.rewritten.isEmpty)
            #expect(index.statements.map(\.line) == [1] && index.statements.map(\.command) == ["CREATE INDEX"])

            // ADD COLUMN without a default: ACCESS EXCLUSIVE, no rewrite.
            let note = rehearsals[1]
            #expect(note.locks.map(\.relation) == ["public.t"])
            #expect(note.locks.first?.mode == .accessExclusive && note.locks.first?.rewritten == false)
            #expect(note.locks.first?.rows == 1000)
            #expect(note.rewritten.isEmpty)

            // ALTER COLUMN TYPE: a rewrite of the table and of its index from before. Its
            // ACCESS EXCLUSIVE lock was taken by file 3 in this one transaction; the
            // rewrite shows this file needs it too.
            let widen = rehearsals[2]
            #expect(widen.rewritten == ["public.t", "public.t_pkey"])
            #expect(widen.statements.map(\.line) == [2] && widen.statements.map(\.command) == ["ALTER TABLE"])
            let rewrite = try #require(widen.locks.first { $0.relation == "public.t" })
            #expect(rewrite.mode == .accessExclusive && rewrite.rewritten && rewrite.heldByEarlierFile && rewrite.line == nil)
            #expect(rewrite.rows == 1000)
            #expect(rewrite.blocksTable)

            // A table the file creates keeps nobody waiting.
            let u = rehearsals[3]
            #expect(u.locks.contains { $0.relation == "public.u" && $0.kind == .table && $0.mode == .accessExclusive })
            #expect(u.locks.allSatisfy { !$0.existedBefore && !$0.blocksTable })

            let blocking = rehearsals.tableBlockingLocks(aboveRows: 999)
            #expect(blocking.map { "\($0.rehearsal.version) \($0.lock.relation)" } == ["3 public.t", "4 public.t"])
            #expect(rehearsals.tableBlockingLocks(aboveRows: 1000).isEmpty)

            // Nothing of it stayed.
            #expect(try await migrator.states() == ["1": .applied, "2": .pending, "3": .pending, "4": .pending, "5": .pending])
            #expect(try await schemaDump(url) == schema)
            let connection = try await PostgresConnection.connect(url)
            #expect(try await connection.query("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'n'").first![0, as: String.self] == "integer")
            #expect(try await connection.exists("u") == false)
            #expect(try await connection.count("SELECT count(*) FROM t") == 1000)
            await connection.close()

            // The JSON a deploy script reads, and back.
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            let json = String(decoding: try encoder.encode(rehearsals), as: UTF8.self)
            #expect(json.contains(#""held_by_earlier_file":true"#) && json.contains(#""status":"rehearsed""#) && json.contains(#""mode":"AccessExclusiveLock""#))
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            #expect(try decoder.decode([Rehearsal].self, from: Data(json.utf8)) == rehearsals)
        }
    }

    /// In one transaction a lock an earlier file took is not taken again, so it is not
    /// listed again — unless the file rewrites the relation. Documented in `Rehearsal`.
    @Test func aLockAnEarlierFileHoldsIsListedOnceUnlessTheFileRewrites() async throws {
        let folder = try MigrationFolder([
            "1_t.up.sql": "CREATE TABLE t (id int, n int);\n",
            "2_widen.up.sql": "ALTER TABLE t ALTER COLUMN n TYPE bigint;\n",
            "3_note.up.sql": "ALTER TABLE t ADD COLUMN note text;\n",
        ])
        try await TestDatabase.withDatabase { (url: String) async throws -> Void in
            let migrator = folder.migrator(url)
            try await migrator.up(to: MigrationVersion("1")!)
            let rehearsals = try await migrator.rehearse()
            #expect(rehearsals[0].locks.map(\.mode) == [.accessExclusive] && rehearsals[0].locks.first?.heldByEarlierFile == false)
            #expect(rehearsals[0].rewritten == ["public.t"])
            #expect(rehearsals[1].locks.isEmpty && rehearsals[1].outcome == .rehearsed)
        }
    }

    /// A rehearsal never queues behind production: it gives up after its lock timeout
    /// and says who holds the lock.
    @Test func aLockedTableFailsFastNamingTheBlocker() async throws {
        let folder = try MigrationFolder([
            "1_t.up.sql": "CREATE TABLE t (id int);\n",
            "2_x.up.sql": "CREATE TABLE fresh (id int);\nALTER TABLE t ADD COLUMN x int;\n",
            "3_y.up.sql": "CREATE TABLE y (id int);\n",
        ])
        try await TestDatabase.withDatabase { (url: String) async throws -> Void in
            let migrator = folder.migrator(url)
            try await migrator.up(to: MigrationVersion("1")!)
            let blocker = try await PostgresConnection.connect(url + "?application_name=rehearsal-blocker")
            try await blocker.query("BEGIN")
            try await blocker.query("LOCK TABLE t IN ACCESS SHARE MODE")  // a reader, for ever

            // A lock timeout of 2 s, not the default 100 ms: the watcher that names the
            // blocker must get a look in while the statement waits, and under the whole
            // suite on 2 cores 100 ms was sometimes too short (the failure then says it
            // was not seen who).
            let start = ContinuousClock.now
            let rehearsals = try await migrator.rehearse(lockTimeout: .seconds(2))
            // Room for a loaded machine; the lock is held for ever.
            #expect(ContinuousClock.now - start < .seconds(8))
            let failure = try #require(rehearsals.first?.failure)
            #expect(failure.waitsForLock && failure.sqlState == "55P03" && failure.line == 2)
            #expect(failure.blockers.map(\.pid) == [blocker.backendPID])
            #expect(failure.blockers.first?.application == "rehearsal-blocker")
            #expect(failure.blockers.first?.state == "idle in transaction")
            #expect(failure.message.hasPrefix("\(folder.url.path)/2_x.up.sql:2: SQLSTATE 55P03: "))
            #expect(failure.message.contains("blocked by pid \(blocker.backendPID) (application \"rehearsal-blocker\""))
            #expect(!failure.message.contains("LOCK TABLE"), "never another session's SQL")
            #expect(rehearsals.first?.statements.map(\.line) == [1, 2])
            #expect(rehearsals.last?.outcome == .notRehearsed(reason: "an earlier file (2) failed"))

            try await blocker.query("ROLLBACK")
            await blocker.close()
            #expect(try await migrator.states() == ["1": .applied, "2": .pending, "3": .pending])
            let connection = try await PostgresConnection.connect(url)
            #expect(try await connection.exists("fresh") == false)
            await connection.close()
        }
    }

    /// A file that runs outside a transaction cannot be rolled back: it is skipped and
    /// the rehearsal goes on; a later file that needed it fails, as its own failure.
    @Test func aFileOutsideATransactionIsSkippedAndLaterFilesStillRun() async throws {
        let folder = try MigrationFolder([
            "1_t.up.sql": "CREATE TABLE t (id int);\n",
            "2_index.up.sql": "CREATE INDEX CONCURRENTLY t_id ON t (id);\n",
            "3_note.up.sql": "ALTER TABLE t ADD COLUMN note text;\n",
            "4_z.up.sql": "-- stockroom:no-transaction\nALTER TABLE t ADD COLUMN z int;\n",
            "5_uses_z.up.sql": "UPDATE t\n   SET z = 1;\n",
        ])
        try await TestDatabase.withDatabase { (url: String) async throws -> Void in
            let migrator = folder.migrator(url)
            try await migrator.up(to: MigrationVersion("1")!)
            let rehearsals = try await migrator.rehearse()
            #expect(rehearsals.map(\.version.digits) == ["2", "3", "4", "5"])
            guard case .notRehearsed(let reason) = rehearsals[0].outcome else { Issue.record("\(rehearsals[0].outcome)"); return }
            #expect(reason == "it runs outside a transaction (CREATE INDEX CONCURRENTLY (line 1) cannot run inside a transaction), so a rehearsal could not roll it back")
            #expect(rehearsals[0].statements.isEmpty && rehearsals[0].locks.isEmpty)
            #expect(rehearsals[1].outcome == .rehearsed)
            #expect(rehearsals[1].locks.map { "\($0.relation) \($0.mode.rawValue)" } == ["public.t AccessExclusiveLock"])
            guard case .notRehearsed(let explicit) = rehearsals[2].outcome else { Issue.record("\(rehearsals[2].outcome)"); return }
            #expect(explicit.contains("-- stockroom:no-transaction"))
            let failure = try #require(rehearsals[3].failure)
            #expect(failure.sqlState == "42703" && failure.line == 2 && !failure.waitsForLock)
            #expect(failure.message.contains("5_uses_z.up.sql:2: SQLSTATE 42703: column \"z\" of relation \"t\" does not exist"))

            let connection = try await PostgresConnection.connect(url)
            #expect(try await connection.exists("t_id") == false)
            #expect(try await connection.count("SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname IN ('note', 'z')") == 0)
            await connection.close()
        }
    }

    /// Transaction control is never run; the history table is never written, not even
    /// created, and tables the files create are gone.
    @Test func transactionControlIsNeverRunAndNothingIsCommitted() async throws {
        let folder = try MigrationFolder([
            "1_t.up.sql": "CREATE TABLE t (id int);\n",
            "2_commit.up.sql": "INSERT INTO t VALUES (1);\nCOMMIT;\nINSERT INTO t VALUES (2);\n",
            "3_savepoint.up.sql": "INSERT INTO t VALUES (3);\nSAVEPOINT s;\nINSERT INTO t VALUES (4);\n",
            "4_prepare.up.sql": "INSERT INTO t VALUES (5);\nPREPARE TRANSACTION 'x';\n",
            "5_insert.up.sql": "INSERT INTO t VALUES (6);\n",
        ])
        try await TestDatabase.withDatabase { (url: String) async throws -> Void in
            let migrator = folder.migrator(url)
            let rehearsals = try await migrator.rehearse()
            #expect(rehearsals.map(\.outcome) == [
                .rehearsed,
                .notRehearsed(reason: "it has its own BEGIN/COMMIT, which would end the rehearsal's transaction"),
                .notRehearsed(reason: "line 2: SAVEPOINT would end or change the rehearsal's transaction"),
                .notRehearsed(reason: "line 2: PREPARE TRANSACTION would end or change the rehearsal's transaction"),
                .rehearsed,
            ])
            #expect(rehearsals[1...3].allSatisfy { $0.statements.isEmpty })
            let insert = try #require(rehearsals[4].locks.first)
            #expect(insert.relation == "public.t" && insert.mode == .rowExclusive && !insert.existedBefore && insert.rows == nil)

            let connection = try await PostgresConnection.connect(url)
            #expect(try await connection.exists("t") == false)
            #expect(try await connection.exists("stockroom_migrations") == false)
            #expect(try await connection.count("SELECT count(*) FROM pg_prepared_xacts") == 0)
            await connection.close()
            #expect(try await migrator.states().values.allSatisfy { $0 == .pending })
        }
    }

    /// A statement that runs too long is stopped by the rehearsal's statement timeout.
    @Test func aSlowStatementIsStoppedByTheStatementTimeout() async throws {
        let folder = try MigrationFolder(["1_slow.up.sql": "SET statement_timeout = 0;\nSELECT pg_sleep(60);\n"])
        try await TestDatabase.withDatabase { (url: String) async throws -> Void in
            let start = ContinuousClock.now
            let rehearsals = try await folder.migrator(url).rehearse(statementTimeout: .milliseconds(300))
            // 300 ms of statement timeout against a minute of sleep; room for a loaded machine.
            #expect(ContinuousClock.now - start < .seconds(15), "the file's own SET does not lift the limit")
            #expect(rehearsals.first?.failure?.sqlState == "57014")
            #expect(rehearsals.first?.failure?.line == 2)
        }
    }

    /// Nothing pending: nothing to rehearse, and no transaction opened.
    @Test func nothingPendingRehearsesNothing() async throws {
        let folder = try MigrationFolder(["1_t.up.sql": "CREATE TABLE t (id int);\n"])
        try await TestDatabase.withDatabase { (url: String) async throws -> Void in
            let migrator = folder.migrator(url)
            try await migrator.up()
            #expect(try await migrator.rehearse().isEmpty)
            #expect(try await migrator.pending().isEmpty)
        }
    }
}
