import Foundation
import LibPQ
import Migrations
import Testing

@Suite("The runner against the server")
struct RunnerTests {
    @Test func upDownUpLeavesTheSameSchema() async throws {
        let folder = try MigrationFolder([
            "0001_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\n",
            "0001_users.down.sql": "DROP TABLE users;\n",
            "0002_function.up.sql": """
                CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    NEW.email := lower(NEW.email); -- a semicolon inside the body
                    RETURN NEW;
                END;
                $$;
                CREATE TRIGGER users_touch BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION touch();
                DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'mood') THEN CREATE TYPE mood AS ENUM ('ok'); END IF; END $$;
                """,  // no final newline
            "0002_function.down.sql": "DROP TRIGGER users_touch ON users; DROP FUNCTION touch(); DROP TYPE mood;",
            "0003_own_transaction.up.sql": "BEGIN;\nALTER TABLE users ADD COLUMN name text;\nCOMMIT;\n",
            "0003_own_transaction.down.sql": "BEGIN;\nALTER TABLE users DROP COLUMN name;\nCOMMIT;\n",
            "0004_index.up.sql": "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);\n",
            "0004_index.down.sql": "DROP INDEX CONCURRENTLY users_email_idx;\n",
            "0005_comment_only.up.sql": "-- nothing to do yet\n",
            "0005_comment_only.down.sql": "",
        ])
        try await TestDatabase.withDatabase { url in
            let migrator = folder.migrator(url)
            let applied = try await migrator.up()
            #expect(applied.map(\.version.digits) == ["1", "2", "3", "4", "5"])
            #expect(applied[2].mode == .ownTransaction)
            if case .noTransaction = applied[3].mode {} else { Issue.record("CREATE INDEX CONCURRENTLY should run outside a transaction") }
            let first = try await schemaDump(url)
            #expect(first.contains("users_email_idx") && first.contains("users_touch") && first.contains("name text"))

            let connection = try await PostgresConnection.connect(url)
            try await connection.query("INSERT INTO users (id, email) VALUES (1, 'ANN@EXAMPLE.COM')")
            #expect(try await connection.query("SELECT email FROM users").first![0, as: String.self] == "ann@example.com")
            await connection.close()

            #expect(try await migrator.up().isEmpty)
            #expect(try await migrator.down(.all).map(\.version.digits) == ["5", "4", "3", "2", "1"])
            #expect(try await migrator.status().allSatisfy { $0.state == .pending })
            try await migrator.up()
            #expect(try await schemaDump(url) == first)
            #expect(try await migrator.status().allSatisfy { $0.state == .applied })
        }
    }

    @Test func stockroomsOwnMigrationsGoDownAndUpToTheSameSchema() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let directory = root.appendingPathComponent("migrations")
        try await TestDatabase.withDatabase { url in
            let migrator = Migrator(databaseURL: url, configuration: .init(directory: directory), logger: quietLogger)
            let count = try MigrationDirectory.load(directory).count
            #expect(try await migrator.up().count == count)
            let first = try await schemaDump(url)
            #expect(first.contains("products_search_on_text_change"))
            #expect(try await migrator.down(.all).count == count)
            #expect(try await migrator.up().count == count)
            #expect(try await schemaDump(url) == first)
        }
    }

    @Test func statementsThatRefuseATransactionRunOutsideOne() async throws {
        let folder = try MigrationFolder([
            "1_setup.up.sql": """
                CREATE TABLE t (id int);
                CREATE TYPE mood AS ENUM ('ok');
                CREATE TABLE people (mood mood);
                CREATE TABLE m (d date) PARTITION BY RANGE (d);
                CREATE TABLE m_2024 PARTITION OF m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
                """,
            "2_refusing.up.sql": """
                CREATE INDEX CONCURRENTLY t_id ON t (id);
                REINDEX INDEX CONCURRENTLY t_id;
                VACUUM (ANALYZE) t;
                ALTER TABLE m DETACH PARTITION m_2024 CONCURRENTLY;
                ALTER TYPE mood ADD VALUE 'great';
                INSERT INTO people VALUES ('great');
                """,
        ])
        try await TestDatabase.withDatabase { url in
            let applied = try await folder.migrator(url).up()
            #expect(applied.map(\.version.digits) == ["1", "2"])
            #expect(applied[0].mode == .transaction)
            if case .noTransaction = applied[1].mode {} else { Issue.record("2_refusing should run outside a transaction") }
            let connection = try await PostgresConnection.connect(url)
            #expect(try await connection.count("SELECT count(*) FROM people WHERE mood = 'great'") == 1)
            #expect(try await connection.count("SELECT count(*) FROM pg_inherits WHERE inhparent = 'm'::regclass") == 0)
            #expect(try await connection.exists("t_id"))
            await connection.close()
        }
    }

    @Test func aFailingFileLeavesNoTrace() async throws {
        let folder = try MigrationFolder([
            "1_ok.up.sql": "CREATE TABLE kept (id int);\n",
            "2_broken.up.sql": "CREATE TABLE half (id int);\nINSERT INTO half VALUES (1);\n\nSELECT * FROM no_such_table;\n",
        ])
        try await TestDatabase.withDatabase { url in
            let migrator = folder.migrator(url)
            let error = await #expect(throws: MigrationError.self) { try await migrator.up() }
            #expect(error?.code == .migrationFailed)
            #expect(error?.underlying?.sqlState == .undefinedTable)
            #expect(error?.message.contains("2_broken.up.sql:4") == true, "names the file and the line")
            #expect(error?.message.contains("42P01") == true)
            #expect(error?.message.contains("no_such_table") == true)
            let connection = try await PostgresConnection.connect(url)
            #expect(try await connection.exists("kept"))
            #expect(try await !connection.exists("half"))
            #expect(try await connection.count("SELECT count(*) FROM stockroom_migrations") == 1)
            await connection.close()
            #expect(try await migrator.states() == ["1": .applied, "2": .pending])

            // No position from the server ("already exists"): the line of the statement it
            // counted to.
            try folder.write("2_broken.up.sql", "CREATE TABLE half (id int);\nDO $$ BEGIN\n  PERFORM 1;\nEND $$;\nCREATE TABLE half (id int);\n")
            let unplaced = await #expect(throws: MigrationError.self) { try await migrator.up() }
            #expect(unplaced?.underlying?.position == nil)
            #expect(unplaced?.message.contains("2_broken.up.sql:5: SQLSTATE 42P07") == true)

            try folder.write("2_broken.up.sql", "CREATE TABLE half (id int);\n")
            #expect(try await migrator.up().count == 1)
        }
    }

    @Test func aNoTransactionFileFailingMidwayNeedsAPerson() async throws {
        let folder = try MigrationFolder([
            "1_table.up.sql": "CREATE TABLE t (id int, email text);\n",
            "2_indexes.up.sql": "CREATE INDEX CONCURRENTLY t_id ON t (id);\nCREATE INDEX CONCURRENTLY t_missing ON t (missing_column);\n",
            "3_after.up.sql": "CREATE TABLE after (id int);\n",
        ])
        try await TestDatabase.withDatabase { url in
            let migrator = folder.migrator(url)
            let error = await #expect(throws: MigrationError.self) { try await migrator.up() }
            #expect(error?.code == .needsResolution)
            #expect(error?.message.contains("2_indexes.up.sql:2") == true)
            #expect(error?.message.contains("resolve") == true)
            #expect(try await migrator.states() == ["1": .applied, "2": .failed, "3": .pending])

            let refused = await #expect(throws: MigrationError.self) { try await migrator.up() }
            #expect(refused?.code == .needsResolution)
            #expect(refused?.message.contains("stockroom migrate resolve 2 --applied") == true)
            #expect(refused?.message.contains("--rolled-back") == true)

            // A person drops the half-made index and fixes the file, then resolves.
            let connection = try await PostgresConnection.connect(url)
            #expect(try await connection.exists("t_id"))
            try await connection.query("DROP INDEX t_id")
            try folder.write("2_indexes.up.sql", "CREATE INDEX CONCURRENTLY t_id ON t (id);\nCREATE INDEX CONCURRENTLY t_email ON t (email);\n")
            try await migrator.resolve(MigrationVersion("2")!, as: .rolledBack)
            #expect(try await migrator.up().map(\.version.digits) == ["2", "3"])
            #expect(try await connection.exists("t_email"))
            await connection.close()
            #expect(try await migrator.states() == ["1": .applied, "2": .applied, "3": .applied])
        }
    }

    @Test func resolvingAsAppliedKeepsTheRow() async throws {
        let folder = try MigrationFolder(["1_vacuum.up.sql": "CREATE TABLE t (id int);\nVACUUM no_such_table;\n"])
        try await TestDatabase.withDatabase { url in
            let migrator = folder.migrator(url)
            await #expect(throws: MigrationError.self) { try await migrator.up() }
            let notFailed = await #expect(throws: MigrationError.self) { try await migrator.resolve(MigrationVersion("9")!, as: .applied) }
            #expect(notFailed?.code == .unknownVersion)
            try await migrator.resolve(MigrationVersion("1")!, as: .applied)
            #expect(try await migrator.states() == ["1": .applied])
            #expect(try await migrator.up().isEmpty)
        }
    }

    @Test func historyThatNoLongerMatchesTheFilesIsRefused() async throws {
        let folder = try MigrationFolder([
            "1_a.up.sql": "CREATE TABLE a (id int);\n",
            "3_c.up.sql": "CREATE TABLE c (id int);\n",
        ])
        try await TestDatabase.withDatabase { url in
            let migrator = folder.migrator(url)
            try await migrator.up()

            // A line-ending-only change is not a modification.
            try folder.write("1_a.up.sql", "\u{FEFF}CREATE TABLE a (id int);\r\n")
            #expect(try await migrator.verify().isEmpty)

            try folder.write("1_a.up.sql", "CREATE TABLE a (id bigint);\n")
            #expect(try await migrator.verify().map(\.state) == [.modified])
            let modified = await #expect(throws: MigrationError.self) { try await migrator.up() }
            #expect(modified?.code == .modified)
            #expect(modified?.message.contains("1_a.up.sql") == true)
            try folder.write("1_a.up.sql", "CREATE TABLE a (id int);\n")

            // A late file, older than the newest applied one.
            try folder.write("2_b.up.sql", "CREATE TABLE b (id int);\n")
            let late = await #expect(throws: MigrationError.self) { try await migrator.up() }
            #expect(late?.code == .outOfOrder)
            #expect(late?.message.contains("2_b.up.sql") == true && late?.message.contains("--allow-out-of-order") == true)
            let allowing = folder.migrator(url) { $0.allowOutOfOrder = true }
            #expect(try await allowing.up().map(\.version.digits) == ["2"])

            // The newest applied file gone looks like an older binary's folder: a newer
            // deploy's version, which `up` leaves be (status says so).
            try folder.remove("3_c.up.sql")
            #expect(try await migrator.status().map(\.state) == [.applied, .applied, .newer])
            #expect(try await migrator.up().isEmpty)
            // An applied file below the newest one that disappeared is missing.
            try folder.write("3_c.up.sql", "CREATE TABLE c (id int);\n")
            try folder.remove("2_b.up.sql")
            #expect(try await migrator.verify().map(\.state) == [.missing])
            let missing = await #expect(throws: MigrationError.self) { try await migrator.up() }
            #expect(missing?.code == .missingFile)
        }
    }

    @Test func downRefusesBeforeChangingAnythingWhenADownFileIsMissing() async throws {
        let folder = try MigrationFolder([
            "1_a.up.sql": "CREATE TABLE a (id int);\n", "1_a.down.sql": "DROP TABLE a;\n",
            "2_b.up.sql": "CREATE TABLE b (id int);\n",
            "3_c.up.sql": "CREATE TABLE c (id int);\n", "3_c.down.sql": "DROP TABLE c;\n",
        ])
        try await TestDatabase.withDatabase { url in
            let migrator = folder.migrator(url)
            try await migrator.up()
            let error = await #expect(throws: MigrationError.self) { try await migrator.down(.all) }
            #expect(error?.code == .missingDown)
            #expect(error?.message.contains("2_b.down.sql") == true)
            #expect(try await migrator.states() == ["1": .applied, "2": .applied, "3": .applied])
            #expect(try await migrator.down(.steps(1)).map(\.version.digits) == ["3"])
            try folder.write("2_b.down.sql", "DROP TABLE b;\n")
            #expect(try await migrator.down(.to(MigrationVersion("1")!)).map(\.version.digits) == ["2"])
            #expect(try await migrator.up(to: MigrationVersion("2")!).map(\.version.digits) == ["2"])
            let dry = try await migrator.up(dryRun: true)
            #expect(dry.map(\.version.digits) == ["3"] && dry[0].sql.contains("CREATE TABLE c"))
            #expect(try await migrator.states()["3"] == .pending, "a dry run changes nothing")
        }
    }

    @Test func theRealWorldOpenMeterFolderGoesUpDownAndUpAgain() async throws {
        let directory = try MigrationCorpus.openMeter()
        try await TestDatabase.withDatabase { url in
            let migrator = Migrator(databaseURL: url, configuration: .init(directory: directory), logger: quietLogger)
            let count = try MigrationDirectory.load(directory).count
            #expect(count == 269)
            #expect(try await migrator.up().count == count)
            let first = try await schemaDump(url)
            #expect(try await migrator.down(.all).count == count)
            #expect(try await migrator.up().count == count)
            #expect(try await schemaDump(url) == first)
            let status = try await migrator.status()
            #expect(status.count == count && status.allSatisfy { !$0.needsAttention })
        }
    }
}
