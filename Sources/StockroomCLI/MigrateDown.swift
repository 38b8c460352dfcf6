import ArgumentParser
import Migrations

struct MigrateDown: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "down", abstract: "Roll back applied migrations, newest first (one by default).")

    @OptionGroup var options: MigrationOptions

    @Option(help: "Roll back this many migrations.")
    var steps: Int?

    @Option(help: "Roll back every migration above this version (0 for all).")
    var to: String?

    @Flag(help: "Roll back every applied migration.")
    var all = false

    @Flag(name: .customLong("dry-run"), help: "Print the plan and the SQL; change nothing.")
    var dryRun = false

    func validate() throws {
        if [steps != nil, to != nil, all].filter({ $0 }).count > 1 { throw ValidationError("give one of --steps, --to and --all") }
        if let steps, steps < 1 { throw ValidationError("--steps must be at least 1") }
        if let to, MigrationVersion(to) == nil { throw ValidationError("--to: expected a version number, got '\(to)'") }
    }

    func run() async throws {
        let target: Migrator.DownTarget = all ? .all : to.flatMap(MigrationVersion.init).map { .to($0) } ?? .steps(steps ?? 1)
        let dryRun = self.dryRun
        let migrator = options.migrator()
        try await reportingFailures("migrate down") {
            try await cancellableBySignals {
                let done = try await migrator.down(target, dryRun: dryRun) { step in
                    step.report(dryRun: dryRun, planned: "would roll back", done: "rolled back")
                }
                if done.isEmpty { print("nothing to roll back") }
            }
        }
    }
}
