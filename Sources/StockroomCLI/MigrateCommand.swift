import ArgumentParser

/// `stockroom migrate …`: apply, roll back and inspect the schema kept in migrations/.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply, roll back and inspect schema migrations."
    )
}
