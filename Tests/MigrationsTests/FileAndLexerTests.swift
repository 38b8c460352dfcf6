import Foundation
import Testing
@testable import Migrations

@Suite("Files, versions and the SQL lexer (no database)")
struct FileAndLexerTests {
    @Test func versionsSortNumericallyAtAnyWidth() {
        let versions = ["10", "9", "0002", "20240826120919", "1"].compactMap(MigrationVersion.init).sorted()
        #expect(versions.map(\.digits) == ["1", "2", "9", "10", "20240826120919"])
        #expect(MigrationVersion("0010") == MigrationVersion("10"))
        #expect(MigrationVersion("12a") == nil)
        #expect(MigrationVersion("") == nil)
        #expect(MigrationVersion("123456789012345678901234567890")! > MigrationVersion("99999999999999999999")!)
    }

    @Test func fileNamesFollowGolangMigrate() throws {
        #expect(MigrationDirectory.parse("0001_create_users.up.sql")?.title == "create_users")
        #expect(MigrationDirectory.parse("20240903155435_entitlement-expired-index.down.sql")?.isUp == false)
        #expect(MigrationDirectory.parse("create_users.up.sql") == nil)
        #expect(MigrationDirectory.parse("0001_.up.sql") == nil)
        #expect(MigrationDirectory.parse("0001_x.sql") == nil)

        let folder = try MigrationFolder(["1_a.up.sql": "", "01_b.up.sql": "", "README.md": "notes"])
        let duplicate = #expect(throws: MigrationError.self) { try MigrationDirectory.load(folder.url) }
        #expect(duplicate?.code == .duplicateVersion)
        #expect(duplicate?.message.contains("01_b.up.sql") == true && duplicate?.message.contains("1_a.up.sql") == true)

        let bad = try MigrationFolder(["1_a.up.sql": "", "oops.sql": "", "2-b.up.sql": ""])
        let invalid = #expect(throws: MigrationError.self) { try MigrationDirectory.load(bad.url) }
        #expect(invalid?.code == .invalidFileName)
        #expect(invalid?.message.contains("oops.sql") == true && invalid?.message.contains("2-b.up.sql") == true)

        let orphan = try MigrationFolder(["1_a.up.sql": "", "2_b.down.sql": ""])
        #expect(throws: MigrationError.self) { try MigrationDirectory.load(orphan.url) }

        let fine = try MigrationFolder(["10_ten.up.sql": "SELECT 1", "9_nine.up.sql": "-- only a comment", "9_nine.down.sql": "", "README.md": ""])
        let loaded = try MigrationDirectory.load(fine.url)
        #expect(loaded.map(\.version.digits) == ["9", "10"])
        #expect(loaded[0].up.isEmpty && loaded[0].down != nil && loaded[1].down == nil)
    }

    @Test func checksumsIgnoreLineEndsAndByteOrderMarks() throws {
        let lf = try MigrationScript(path: "a", contents: "CREATE TABLE t (id int);\nSELECT 1;\n")
        let crlf = try MigrationScript(path: "a", contents: "\u{FEFF}CREATE TABLE t (id int);\r\nSELECT 1;\r\n")
        let edited = try MigrationScript(path: "a", contents: "CREATE TABLE t (id bigint);\nSELECT 1;\n")
        #expect(lf.checksum == crlf.checksum)
        #expect(lf.checksum != edited.checksum)
        #expect(lf.checksum.count == 64)
    }

    @Test func statementsSplitOnlyOutsideQuotesCommentsAndBodies() throws {
        let sql = """
            -- a comment; with a semicolon
            CREATE TABLE "odd;name" (note text DEFAULT 'it''s; fine');
            /* outer /* nested; */ still comment; */
            INSERT INTO t VALUES (E'back\\'slash; quote', $tag$ $$ ; $tag$);
            CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$
            BEGIN
              RETURN 1; -- inside the body
            END;
            $$;
            DO $do$ BEGIN PERFORM 1; END $do$;
            CREATE FUNCTION g(a int) RETURNS int LANGUAGE sql
            BEGIN ATOMIC
              SELECT CASE WHEN a > 0 THEN 1 ELSE 0 END;
              SELECT a;
            END;
            SELECT $1, a$b$c FROM t
            """
        let statements = try SQLLexer.statements(in: sql)
        #expect(statements.count == 6)
        #expect(statements.map(\.line) == [2, 4, 5, 10, 11, 16])
        #expect(statements[0].words.prefix(3) == ["CREATE", "TABLE", "odd;name"])
        #expect(statements[0].literals == ["it's; fine"])
        #expect(statements[1].literals == ["back'slash; quote"])
        #expect(statements[4].words.prefix(3) == ["CREATE", "FUNCTION", "G"])
        #expect(statements[4].text.hasSuffix("END;"))
        #expect(statements[5].text == "SELECT $1, a$b$c FROM t")
        #expect(try SQLLexer.statements(in: "-- nothing\n/* at all */\n\n").isEmpty)
        #expect(try SQLLexer.statements(in: ";\nSELECT 1;;\n ; SELECT 2").map(\.text) == ["SELECT 1;", "SELECT 2"])
        let rule = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));"
        #expect(try SQLLexer.statements(in: rule + "\nSELECT 1;").map(\.text) == [rule, "SELECT 1;"])
    }

    @Test func unterminatedQuotesAreErrorsWithTheLine() {
        #expect(throws: SQLLexerError(reason: "unterminated string literal", line: 2)) { try SQLLexer.statements(in: "SELECT 1;\nSELECT 'oops") }
        #expect(throws: SQLLexerError(reason: "unterminated dollar-quoted string $x$", line: 1)) { try SQLLexer.statements(in: "SELECT $x$ never closed") }
        #expect(throws: SQLLexerError(reason: "unterminated /* comment", line: 1)) { try SQLLexer.statements(in: "/* /* */") }
    }

    /// Inputs cut off or odd at every kind of token: the lexer answers with statements or
    /// an error with a line, never a crash or a hang.
    @Test(arguments: [
        "$", "$$", "$a", "$a$", "$1", "a$", "'", "''", "E'", "E'\\", "E'\\'", "e'x\\'';", "U&'d\\0061t'",
        "\"", "\"\"\"", "/*", "/* */ */", "*/", "-", "--", "-- x", ";", ";;;", "\u{FEFF}", "\r\n\r\n",
        "BEGIN ATOMIC", "CREATE FUNCTION f() BEGIN ATOMIC", "CREATE FUNCTION f() BEGIN ATOMIC SELECT 1; END", "END;", "CASE END",
        "SELECT $q$;$q", "SELECT $q$ $Q$ ;", "SELECT 1 /* ; */; SELECT '\n;\n'", "é; ü;", "\u{0}",
    ])
    func oddInputsEndInStatementsOrALineNumberedError(sql: String) {
        do {
            let statements = try SQLLexer.statements(in: sql)
            #expect(statements.allSatisfy { $0.line >= 1 && !$0.text.isEmpty })
        } catch {
            #expect(error.line >= 1 && !error.reason.isEmpty)
        }
    }

    @Test func filesThatCannotRunInATransactionAreDetected() throws {
        func mode(_ sql: String) throws -> TransactionMode { try MigrationScript(path: "f", contents: sql).mode }
        #expect(try mode("CREATE TABLE t (id int);") == .transaction)
        if case .noTransaction = try mode("CREATE TABLE t (id int);\ncreate unique index concurrently i on t (id);") {} else { Issue.record("CIC not detected") }
        if case .noTransaction = try mode("DROP INDEX CONCURRENTLY IF EXISTS i;") {} else { Issue.record("DROP INDEX CONCURRENTLY not detected") }
        if case .noTransaction = try mode("REINDEX (VERBOSE) TABLE CONCURRENTLY t;") {} else { Issue.record("REINDEX CONCURRENTLY not detected") }
        if case .noTransaction = try mode("VACUUM ANALYZE t;") {} else { Issue.record("VACUUM not detected") }
        if case .noTransaction = try mode("ALTER SYSTEM SET work_mem = '8MB';") {} else { Issue.record("ALTER SYSTEM not detected") }
        if case .noTransaction = try mode("ALTER TABLE m DETACH PARTITION m_2024 CONCURRENTLY;") {} else { Issue.record("DETACH … CONCURRENTLY not detected") }
        #expect(try mode("ALTER TABLE m DETACH PARTITION m_2024;\nDISCARD PLANS;\nREFRESH MATERIALIZED VIEW CONCURRENTLY v;") == .transaction)
        // The words only count outside quotes, comments and bodies.
        #expect(try mode("-- CREATE INDEX CONCURRENTLY i ON t (id);\nSELECT 'VACUUM';\nDO $$ BEGIN EXECUTE 'VACUUM'; END $$;") == .transaction)
        // An added enum value used later in the same file needs a commit in between.
        if case .noTransaction = try mode("ALTER TYPE mood ADD VALUE 'ecstatic';\nUPDATE people SET mood = 'ecstatic';") {} else { Issue.record("ADD VALUE used later not detected") }
        #expect(try mode("ALTER TYPE mood ADD VALUE IF NOT EXISTS 'ecstatic';") == .transaction)
        // The directive, anywhere in the comment lines the file starts with.
        let asked = TransactionMode.noTransaction(reason: "the file asks for it with -- stockroom:no-transaction")
        #expect(try mode("-- stockroom:no-transaction\nCREATE TABLE t (id int);") == asked)
        #expect(try mode("-- Why this file is what it is.\n--\n\n--   Stockroom:No-Transaction\nCREATE TABLE t (id int);") == asked)
        // After the first statement it would be ignored: the file is refused instead.
        #expect(throws: MigrationError.self) { try mode("SELECT 1;\n-- stockroom:no-transaction\n") }
        // A file that ends inside its own transaction is refused too; savepoints do not end one.
        #expect(throws: MigrationError.self) { try mode("BEGIN;\nCREATE TABLE t (id int);\n") }
        #expect(throws: MigrationError.self) { try mode("BEGIN;\nSAVEPOINT s;\nROLLBACK TO SAVEPOINT s;\n") }
        #expect(try mode("BEGIN;\nSAVEPOINT s;\nROLLBACK TO SAVEPOINT s;\nCOMMIT;\n") == .ownTransaction)
        #expect(try mode("BEGIN;\nCREATE TABLE t (id int);\nCOMMIT;\n") == .ownTransaction)
        #expect(try mode("START TRANSACTION;\nCREATE TABLE t (id int);\nEND;\n") == .ownTransaction)
    }

    @Test func statementsThatWouldDropTheRunnersLockAreRefused() {
        for sql in ["SELECT 1;\nDISCARD ALL;", "SELECT pg_advisory_unlock_all();", "select PG_ADVISORY_UNLOCK_ALL ()"] {
            let error = #expect(throws: MigrationError.self) { try MigrationScript(path: "9_x.up.sql", contents: sql) }
            #expect(error?.code == .unsupportedStatement)
            #expect(error?.message.hasPrefix("9_x.up.sql:") == true)
        }
        #expect(throws: Never.self) { try MigrationScript(path: "f", contents: "DISCARD PLANS;\nSELECT 'DISCARD ALL';\nDO $$ BEGIN PERFORM 1; END $$;") }
    }

    @Test func statusComparesFilesWithHistory() throws {
        let folder = try MigrationFolder(["1_a.up.sql": "SELECT 1;", "2_b.up.sql": "SELECT 2;", "3_c.up.sql": "SELECT 3;", "5_e.up.sql": "SELECT 5;"])
        let files = try MigrationDirectory.load(folder.url)
        func entry(_ v: String, _ checksum: String, _ outcome: HistoryEntry.Outcome = .applied) -> HistoryEntry {
            HistoryEntry(version: MigrationVersion(v)!, title: "t\(v)", checksum: checksum, outcome: outcome, appliedAt: Date())
        }
        let history = [entry("1", files[0].up.checksum), entry("2", "stale"), entry("4", "gone"), entry("5", files[3].up.checksum, .running)]
        let status = MigrationStatus.compare(files: files, history: history)
        #expect(status.map(\.state) == [.applied, .modified, .pending, .missing, .failed])
        #expect(status[2].outOfOrder, "4 is applied, so pending 3 came late")
        let late = MigrationStatus.compare(files: files, history: [entry("5", files[3].up.checksum)])
        #expect(late.filter(\.outOfOrder).map(\.version.digits) == ["1", "2", "3"])
        #expect(throws: MigrationError.self) { try late.checkConsistent(allowOutOfOrder: false, allowNewer: true) }
        try late.checkConsistent(allowOutOfOrder: true, allowNewer: true)
        // Applied past the newest file: a newer binary's, not a missing file.
        let ahead = MigrationStatus.compare(files: files, history: files.map { entry($0.version.digits, $0.up.checksum) } + [entry("9", "newer")])
        #expect(ahead.map(\.state) == [.applied, .applied, .applied, .applied, .newer])
        try ahead.checkConsistent(allowOutOfOrder: false, allowNewer: true)
        #expect(throws: MigrationError.self) { try ahead.checkConsistent(allowOutOfOrder: false, allowNewer: false) }
    }

    @Test func newVersionsFollowTheFolderStyle() {
        #expect(MigrationNaming.nextVersion(after: [], widthOf: nil) == "0001")
        #expect(MigrationNaming.nextVersion(after: [MigrationVersion("0009")!], widthOf: "0009_x.up.sql") == "0010")
        #expect(MigrationNaming.nextVersion(after: [MigrationVersion("99")!], widthOf: "99_x.up.sql") == "100")
        let now = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15T08:00:00Z
        #expect(MigrationNaming.nextVersion(after: [MigrationVersion("20240826120919")!], widthOf: "20240826120919_x.up.sql", now: now) == "20270115080000")
        #expect(MigrationNaming.nextVersion(after: [MigrationVersion("29990101000000")!], widthOf: "29990101000000_x.up.sql", now: now) == "29990101000001")
    }
}
