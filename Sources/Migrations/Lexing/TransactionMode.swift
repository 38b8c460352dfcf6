import Foundation

/// How a file is run.
public enum TransactionMode: Sendable, Equatable {
    /// Inside a transaction of the runner's, together with its history row: all or nothing.
    case transaction
    /// Statement by statement outside any transaction, because PostgreSQL refuses to run
    /// some of them inside one (the reason names the first such statement), or because
    /// the file asks for it with `-- stockroom:no-transaction` in the comment lines it
    /// starts with.
    case noTransaction(reason: String)
    /// The file has its own BEGIN/COMMIT: it is sent whole, as psql would run it.
    case ownTransaction

    /// The directive a file may carry among the comment lines it starts with (under a
    /// header that says what the file does, say).
    public static let directive = "-- stockroom:no-transaction"

    /// Where `sql` carries the directive: in its leading comment block (honoured), or
    /// on a comment line after its first statement (a mistake the file is refused for,
    /// rather than run in a transaction it asked not to be).
    static func directive(in sql: String) -> (leading: Bool, misplacedLine: Int?) {
        var leading = true
        var found = false
        for (index, line) in sql.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let text = line.trimmingCharacters(in: .whitespaces)
            let isComment = text.hasPrefix("--")
            if leading && !text.isEmpty && !isComment { leading = false }
            guard isComment, isDirective(text) else { continue }
            if leading { found = true } else { return (found, index + 1) }
        }
        return (found, nil)
    }

    /// The `--` comment lines a file starts with (blank lines between them allowed),
    /// trimmed: where directives go.
    static func leadingComments(of sql: String) -> [String] {
        var comments: [String] = []
        for line in sql.split(separator: "\n", omittingEmptySubsequences: false) {
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            guard text.hasPrefix("--") else { break }
            comments.append(text)
        }
        return comments
    }

    /// `-- stockroom:no-transaction`, whatever the case and the spaces after the dashes.
    private static func isDirective(_ comment: String) -> Bool {
        comment.dropFirst(2).trimmingCharacters(in: .whitespaces).lowercased() == "stockroom:no-transaction"
    }

    static func detect(sql: String, statements: [SQLStatement]) -> TransactionMode {
        if directive(in: sql).leading { return .noTransaction(reason: "the file asks for it with \(directive)") }
        for (index, statement) in statements.enumerated() {
            if let what = refusesTransaction(statement, later: statements[(index + 1)...]) {
                return .noTransaction(reason: "\(what) (line \(statement.line)) cannot run inside a transaction")
            }
        }
        if statements.contains(where: isTransactionControl) { return .ownTransaction }
        return .transaction
    }

    /// What makes `statement` impossible inside a transaction block, if anything.
    static func refusesTransaction(_ statement: SQLStatement, later: ArraySlice<SQLStatement>) -> String? {
        let w = statement.words
        let head = w.prefix(8)
        switch w.first {
        case "CREATE":
            if head.starts(with: ["CREATE", "INDEX", "CONCURRENTLY"]) || head.starts(with: ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY"]) {
                return "CREATE INDEX CONCURRENTLY"
            }
            if w.starts(with: ["CREATE", "DATABASE"]) { return "CREATE DATABASE" }
            if w.starts(with: ["CREATE", "TABLESPACE"]) { return "CREATE TABLESPACE" }
            if w.starts(with: ["CREATE", "SUBSCRIPTION"]) { return "CREATE SUBSCRIPTION" }
        case "DROP":
            if w.starts(with: ["DROP", "INDEX", "CONCURRENTLY"]) { return "DROP INDEX CONCURRENTLY" }
            if w.starts(with: ["DROP", "DATABASE"]) { return "DROP DATABASE" }
            if w.starts(with: ["DROP", "TABLESPACE"]) { return "DROP TABLESPACE" }
            if w.starts(with: ["DROP", "SUBSCRIPTION"]) { return "DROP SUBSCRIPTION" }
        case "REINDEX":
            if head.contains("CONCURRENTLY") { return "REINDEX CONCURRENTLY" }
            if head.contains("DATABASE") || head.contains("SYSTEM") { return "REINDEX DATABASE/SYSTEM" }
        case "VACUUM":
            return "VACUUM"
        case "CLUSTER":
            // Only CLUSTER without a table refuses a transaction block.
            if w.count == 1 || w == ["CLUSTER", "VERBOSE"] { return "CLUSTER" }
        case "ALTER":
            if w.starts(with: ["ALTER", "SYSTEM"]) { return "ALTER SYSTEM" }
            if w.starts(with: ["ALTER", "TABLE"]), let detach = w.firstIndex(of: "DETACH"),
               w[detach...].contains("CONCURRENTLY") {
                return "ALTER TABLE … DETACH PARTITION … CONCURRENTLY"
            }
            if w.starts(with: ["ALTER", "DATABASE"]), w.contains("TABLESPACE") { return "ALTER DATABASE … SET TABLESPACE" }
            // A value added to an enum cannot be used before the transaction that added
            // it commits; when the same file uses it later, the file must run outside one.
            if w.starts(with: ["ALTER", "TYPE"]), w.contains("ADD"), w.contains("VALUE"), let value = statement.literals.first,
               later.contains(where: { $0.literals.contains(value) }) {
                return "ALTER TYPE … ADD VALUE '\(value)' used later in the file"
            }
        default:
            break
        }
        return nil
    }

    /// A BEGIN (or START TRANSACTION) that no COMMIT, END, ROLLBACK or ABORT after it
    /// closes: the file would end inside a transaction, and whatever it did after the
    /// BEGIN would be rolled back when the runner's connection closes.
    static func unclosedBegin(in statements: [SQLStatement]) -> SQLStatement? {
        var open: SQLStatement?
        for statement in statements where isTransactionControl(statement) {
            let words = statement.words
            switch words.first {
            case "BEGIN", "START": open = open ?? statement
            // ROLLBACK TO SAVEPOINT stays in the transaction; … PREPARED acts on another.
            case _ where words.dropFirst().first == "TO" || words.dropFirst().first == "PREPARED": break
            default: open = nil
            }
        }
        return open
    }

    static func isTransactionControl(_ statement: SQLStatement) -> Bool {
        switch statement.words.first {
        case "BEGIN", "COMMIT", "END", "ROLLBACK", "ABORT": return true
        case "START": return statement.words.dropFirst().first == "TRANSACTION"
        default: return false
        }
    }
}
