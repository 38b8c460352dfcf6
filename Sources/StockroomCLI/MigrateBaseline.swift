import ArgumentParser
import Migrations

/// `stockroom migrate baseline V`: adopt a database whose schema was made by hand.
struct MigrateBaseline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baseline",
        abstract: "Record every migration up to and including a version as applied, without running it: for a database whose schema was made another way.",
        discussion: "Refused when the database already has a history. Check first that the schema really matches those files."
    )

    @OptionGroup var options: MigrationOptions

    @Argument(help: "The newest version the database's schema already matches.")
    var version: String

    func validate() throws {
        guard MigrationVersion(version) != nil else { throw ValidationError("expected a version number, got '\(version)'") }
    }

    func run() async throws {
        try await reportingFailures("migrate baseline") {
            let recorded = try await options.migrator().baseline(through: MigrationVersion(version)!)
            print("recorded \(recorded.count) migrations as applied, through \(version): \(recorded.map(\.digits).joined(separator: ", "))")
        }
    }
}
