import ArgumentParser

/// `stockroom serve`: the line-protocol TCP service.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve Stockroom's queries over TCP (a line protocol compatible with Redis clients)."
    )
}
