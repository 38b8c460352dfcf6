import ArgumentParser
import Migrations

struct MigrateResolve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve",
        abstract: "Record how a migration that failed outside a transaction was settled by hand."
    )

    @OptionGroup var options: MigrationOptions

    @Argument(help: "The failed migration's version.")
    var version: String

    @Flag(help: "Its changes are now fully in place: record it as applied.")
    var applied = false

    @Flag(name: .customLong("rolled-back"), help: "Its changes are undone: forget it, so `up` runs it again.")
    var rolledBack = false

    func validate() throws {
        guard MigrationVersion(version) != nil else { throw ValidationError("expected a version number, got '\(version)'") }
        guard applied != rolledBack else { throw ValidationError("give exactly one of --applied and --rolled-back") }
    }

    func run() async throws {
        try await reportingFailures("migrate resolve") {
            let version = MigrationVersion(self.version)!
            try await options.migrator().resolve(version, as: applied ? .applied : .rolledBack)
            print(applied ? "recorded \(version) as applied" : "forgot \(version); `stockroom migrate up` will run it again")
        }
    }
}
