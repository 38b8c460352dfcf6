public import Foundation

/// `stockroom migrate lint`: the rules of `LintRule` applied to the up files of a folder.
///
/// What it can know from the text alone, it knows file by file, in version order:
/// - A table (or index, or domain) created in the same file is new and empty, so
///   nothing done to it in that file is a finding: most `CREATE INDEX` statements of a
///   folder sit beside their `CREATE TABLE`.
/// - A `CHECK (column IS NOT NULL)` validated by an earlier statement of the folder makes
///   a later `SET NOT NULL` cheap (PostgreSQL 12+ skips the scan).
/// - A file marked `-- stockroom:breaks-older-binaries` is the contract step of an
///   expand/contract change, where drops belong.
///
/// Down files are not linted: they undo, by design, what their up file made.
public enum MigrationLinter {
    /// The findings of the folder's up files, in version and line order. Files up to
    /// `startAfter` are read (for what they prove) but not reported: a project adopting
    /// the linter, or CI checking only new files, names the last version already deployed.
    public static func lint(directory: URL, startAfter: MigrationVersion? = nil) throws(MigrationError) -> [LintFinding] {
        lint(try MigrationDirectory.load(directory), startAfter: startAfter)
    }

    public static func lint(_ migrations: [Migration], startAfter: MigrationVersion? = nil) -> [LintFinding] {
        var folder = FolderFacts()
        var findings: [LintFinding] = []
        for migration in migrations {
            let found = lint(migration.up, folder: &folder)
            if startAfter.map({ migration.version > $0 }) ?? true { findings += found }
        }
        return findings
    }

    /// What earlier statements of the folder proved.
    struct FolderFacts {
        /// CHECK constraints of the form `column IS NOT NULL`, by name: table and column.
        var notNullChecks: [String: (table: String, column: String)] = [:]
        /// "table.column" pairs a validated CHECK proves not null.
        var provenNotNull: Set<String> = []
    }

    /// What the file being linted made.
    struct FileFacts {
        var tables: Set<String> = []
        var indexes: Set<String> = []
        var domains: Set<String> = []
        /// Domains an existing table's column was switched to in this file.
        var domainsInUse: Set<String> = []
        let breaksOlderBinaries: Bool
    }

    static func lint(_ script: MigrationScript, folder: inout FolderFacts) -> [LintFinding] {
        var file = FileFacts(breaksOlderBinaries: script.breaksOlderBinaries)
        var findings: [LintFinding] = []
        let scalars = Array(script.sql.unicodeScalars)
        var previousEnd = 0
        for statement in script.statements {
            let ignored = ignoredRules(in: scalars, from: previousEnd, through: statement)
            previousEnd = statement.offset + statement.text.unicodeScalars.count
            var check = StatementCheck(tokens: SQLToken.tokens(of: statement.text))
            check.run(file: &file, folder: &folder)
            // One finding per rule and statement, naming every column or table it is about.
            var rules: [LintRule] = []
            var targets: [LintRule: [String]] = [:]
            for (rule, target) in check.findings where !ignored.contains(rule.id) {
                if targets[rule] == nil { rules.append(rule) }
                if let target, targets[rule]?.contains(target) != true { targets[rule, default: []].append(target) }
                if targets[rule] == nil { targets[rule] = [] }
            }
            for rule in rules {
                let named = targets[rule] ?? []
                findings.append(LintFinding(rule: rule, path: script.path, statement: statement, target: named.isEmpty ? nil : named.joined(separator: ", ")))
            }
        }
        return findings
    }

    /// The rule ids named by `-- stockroom:lint-ignore …` in the comments between the
    /// previous statement and this one, or inside this one.
    static func ignoredRules(in scalars: [Unicode.Scalar], from start: Int, through statement: SQLStatement) -> Set<String> {
        let end = min(scalars.count, statement.offset + statement.text.unicodeScalars.count)
        guard start < end else { return [] }
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars[start..<end])
        var ids: Set<String> = []
        for line in String(view).split(whereSeparator: \.isNewline) {
            guard let range = line.range(of: LintRule.ignoreDirective, options: .caseInsensitive) else { continue }
            let rest = line[range.upperBound...].lowercased()
            for word in rest.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "-") }) {
                ids.insert(String(word))
            }
        }
        return ids
    }
}
