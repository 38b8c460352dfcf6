import ArgumentParser
import Foundation
import Migrations

/// `stockroom migrate lint`: the folder's up files against the rules of docs/MIGRATIONS.md,
/// without a database.
struct MigrateLint: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lint",
        abstract: "Check the migration files for statements that lock busy tables or break the running binary; exits 1 on findings.",
        discussion: """
            Silence a rule for one statement with a comment just before it (or inside it) that \
            names the rule: -- stockroom:lint-ignore index-not-concurrent. `--list-rules` prints \
            every rule with its reason and safe alternative. Lint reads SQL only; \
            `migrate plan --rehearse` measures what a file locks and rewrites.
            """
    )

    @Option(help: "The folder of migration files.")
    var dir: String = "migrations"

    @Option(name: .customLong("start-after"), help: "Report only files with a version above this one (the last version deployed): older files cannot change any more.")
    var startAfter: String?

    @Flag(help: "One JSON object, {\"files\", \"findings\": [{\"rule\", \"path\", \"line\", \"statement\", \"target\", \"reason\", \"alternative\"}]}.")
    var json = false

    @Flag(name: .customLong("list-rules"), help: "Print the rules and exit.")
    var listRules = false

    func validate() throws {
        if let startAfter, MigrationVersion(startAfter) == nil {
            throw ValidationError("--start-after: expected a version (digits), got '\(startAfter)'")
        }
    }

    func run() async throws {
        if listRules {
            for rule in LintRule.all {
                print("\(rule.id)\n  why: \(rule.reason)\n  instead: \(rule.alternative)")
            }
            return
        }
        try await reportingFailures("migrate lint") {
            let directory = URL(fileURLWithPath: dir)
            let files = try MigrationDirectory.load(directory).count
            let findings = try MigrationLinter.lint(directory: directory, startAfter: startAfter.flatMap { MigrationVersion($0) })
            if json {
                struct Report: Encodable { var files: Int; var findings: [LintFinding] }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(Report(files: files, findings: findings)), as: UTF8.self))
            } else {
                for finding in findings { print(finding) }
                var explained: Set<String> = []
                for finding in findings where explained.insert(finding.rule.id).inserted {
                    print("\n\(finding.rule.id)\n  why: \(finding.rule.reason)\n  instead: \(finding.rule.alternative)")
                }
                if !findings.isEmpty { print() }
                let noun = findings.count == 1 ? "finding" : "findings"
                print("\(findings.count) \(noun) in \(files) migration\(files == 1 ? "" : "s")")
                if !findings.isEmpty { print("silence one with a comment before the statement: -- \(LintRule.ignoreDirective) <rule id>") }
            }
            if !findings.isEmpty { throw ExitCode(1) }
        }
    }
}
