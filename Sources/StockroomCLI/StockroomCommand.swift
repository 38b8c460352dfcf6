import ArgumentParser

/// `stockroom`: serve, migrate and administer a Stockroom database.
@main
struct StockroomCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stockroom",
        abstract: "Stockroom: a PostgreSQL-backed data service.",
        subcommands: [ServeCommand.self, WorkerCommand.self, MigrateCommand.self, AdminCommand.self, BenchCommand.self]
    )
}
