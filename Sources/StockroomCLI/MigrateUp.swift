import ArgumentParser
import Migrations

struct MigrateUp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "up", abstract: "Apply pending migrations in order.")

    @OptionGroup var options: MigrationOptions

    @Option(help: "Apply up to and including this version.")
    var to: String?

    @Flag(name: .customLong("dry-run"), help: "Print the plan and the SQL; change nothing.")
    var dryRun = false

    @Flag(name: .customLong("allow-out-of-order"), help: "Apply pending files older than the newest applied one.")
    var allowOutOfOrder = false

    func validate() throws {
        if let to, MigrationVersion(to) == nil { throw ValidationError("--to: expected a version number, got '\(to)'") }
    }

    func run() async throws {
        let dryRun = self.dryRun
        let migrator = options.migrator(allowOutOfOrder: allowOutOfOrder)
        let target = to.flatMap(MigrationVersion.init)
        try await reportingFailures("migrate up") {
            try await cancellableBySignals {
                let steps = try await migrator.up(to: target, dryRun: dryRun) { step in
                    step.report(dryRun: dryRun, planned: "would apply", done: "applied")
                }
                if steps.isEmpty { print("nothing to apply: the database is up to date") }
            }
        }
    }
}

extension Migrator.Step {
    /// One line per step as it ends; with --dry-run, the plan and the SQL instead.
    func report(dryRun: Bool, planned: String, done: String) {
        if dryRun {
            print("-- \(planned) \(version) \(title) (\(mode.summary)): \(path)")
            print(sql.hasSuffix("\n") ? sql : sql + "\n")
        } else {
            print("\(done) \(version) \(title) in \(duration.short)")
        }
    }
}

extension TransactionMode {
    var summary: String {
        switch self {
        case .transaction: "in a transaction"
        case .ownTransaction: "with the file's own BEGIN/COMMIT"
        case .noTransaction(let reason): "outside a transaction: \(reason)"
        }
    }
}
