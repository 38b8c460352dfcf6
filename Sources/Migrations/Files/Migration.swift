/// One migration: a version, a title, an up script and perhaps a down script.
public struct Migration: Sendable {
    public let version: MigrationVersion
    public let title: String
    public let up: MigrationScript
    public let down: MigrationScript?
}

/// The SQL of one file, as it is run and checksummed.
public struct MigrationScript: Sendable {
    /// Path of the file, for messages.
    public let path: String
    /// The file's text with a BOM dropped and CRLF turned into LF.
    public let sql: String
    /// SHA-256 (hex) of `sql`.
    public let checksum: String
    /// The statements, split the way psql would split them.
    public let statements: [SQLStatement]
    /// How the runner must run this file.
    public let mode: TransactionMode
    /// The file says, in its leading comments, `-- stockroom:breaks-older-binaries`: once
    /// it is applied, a binary without it (an older deploy) refuses to migrate or start.
    public let breaksOlderBinaries: Bool

    /// The directive of a change older binaries cannot live with (a column they write
    /// dropped, say): the contract phase of an expand/contract change.
    public static let breaksOlderBinariesDirective = "-- stockroom:breaks-older-binaries"

    public init(path: String, contents: String) throws(MigrationError) {
        self.path = path
        self.sql = Checksum.normalize(contents)
        self.checksum = Checksum.sha256Hex(sql)
        do {
            self.statements = try SQLLexer.statements(in: sql)
        } catch {
            throw MigrationError(.unreadableFile, "\(path): \(error.reason) (line \(error.line))")
        }
        // The runner's advisory lock is what keeps two runners from applying one file
        // twice; these would release it halfway through a run.
        if let statement = statements.first(where: { $0.starts(with: "DISCARD", "ALL") || $0.words.contains("PG_ADVISORY_UNLOCK_ALL") }) {
            throw MigrationError(.unsupportedStatement, "\(path):\(statement.line): DISCARD ALL and pg_advisory_unlock_all() would release the migration runner's lock (and reset its timeouts); remove the statement")
        }
        if let line = TransactionMode.directive(in: sql).misplacedLine {
            throw MigrationError(.unsupportedStatement, "\(path):\(line): \(TransactionMode.directive) must be in the comment lines at the top of the file, before its first statement; here it would be ignored")
        }
        if let begin = TransactionMode.unclosedBegin(in: statements) {
            throw MigrationError(.unsupportedStatement, "\(path):\(begin.line): this BEGIN is never ended: the file would finish inside a transaction, which is rolled back when the runner's connection closes; end it with COMMIT")
        }
        self.mode = TransactionMode.detect(sql: sql, statements: statements)
        self.breaksOlderBinaries = TransactionMode.leadingComments(of: sql).contains { comment in
            comment.dropFirst(2).trimmingCharacters(in: .whitespaces).lowercased() == "stockroom:breaks-older-binaries"
        }
    }

    /// True when the file's first statement is BEGIN (or START TRANSACTION), its last is
    /// COMMIT (or END), and nothing between controls the transaction: if it fails, the
    /// server has rolled back all of it.
    var isOneOwnTransaction: Bool {
        guard let first = statements.first, let last = statements.last, statements.count >= 2,
              first.words.first == "BEGIN" || first.starts(with: "START", "TRANSACTION"),
              last.words.first == "COMMIT" || last.words.first == "END" else { return false }
        return !statements.dropFirst().dropLast().contains(where: TransactionMode.isTransactionControl)
    }

    /// True when the file has nothing to run (empty or comments only).
    public var isEmpty: Bool { statements.isEmpty }
}
