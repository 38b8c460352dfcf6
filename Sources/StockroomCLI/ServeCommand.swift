import ArgumentParser
import Foundation
import LibPQ
import Logging
import Migrations
import ServiceLifecycle
import Stockroom
import StockroomServer

/// `stockroom serve`: the line-protocol TCP service.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve Stockroom's queries over TCP (a line protocol compatible with Redis clients).",
        discussion: "Listens on 127.0.0.1:7379 unless --host/--port or STOCKROOM_LISTEN=host:port say otherwise. See docs/PROTOCOL.md."
    )

    @Option(help: "Address to listen on (default 127.0.0.1; the service has no TLS, so think before exposing it).")
    var host: String?

    @Option(help: "Port to listen on (default 7379).")
    var port: Int?

    @Option(name: .customLong("database-url"), help: "PostgreSQL URL or connection string (default: $DATABASE_URL, else the local database).")
    var databaseURL: String?

    @Flag(help: "Apply pending migrations before serving.")
    var migrate = false

    @Option(help: "The folder of migration files, for --migrate.")
    var dir: String = "migrations"

    @Option(name: .customLong("pool-size"), help: "Database connections.")
    var poolSize = 16

    @Option(name: .customLong("max-clients"), help: "Most simultaneous client connections.")
    var maxClients = 10_000

    @Option(name: .customLong("idle-timeout"), help: "Seconds before an idle connection is closed.")
    var idleTimeout = 300

    @Option(name: .customLong("max-request-bytes"), help: "Most bytes of one request; larger ones are refused as their headers arrive.")
    var maxRequestBytes = ProtocolLimits().maxRequestLength

    @Option(name: .customLong("shutdown-deadline"), help: "Seconds a graceful shutdown waits for commands in progress.")
    var shutdownDeadline = 10

    func validate() throws {
        if let port, !(0...65535).contains(port) { throw ValidationError("--port must be 0 to 65535") }
        if poolSize < 1 { throw ValidationError("--pool-size must be at least 1") }
        if maxClients < 1 { throw ValidationError("--max-clients must be at least 1") }
        if idleTimeout < 1 { throw ValidationError("--idle-timeout must be at least 1 second") }
        let limits = ProtocolLimits()
        if maxRequestBytes < limits.maxArgumentLength + 64 {
            throw ValidationError("--max-request-bytes must be at least \(limits.maxArgumentLength + 64), room for one argument of the largest size")
        }
    }

    func run() async throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        let logger = Logger(label: "stockroom")
        let environment = ProcessInfo.processInfo.environment
        var configuration = ServerConfiguration()
        if let listen = environment["STOCKROOM_LISTEN"], !listen.isEmpty {
            guard let colon = listen.lastIndex(of: ":"), let listenPort = Int(listen[listen.index(after: colon)...]) else {
                throw ValidationError("STOCKROOM_LISTEN must be host:port, got '\(listen)'")
            }
            configuration.host = String(listen[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
            configuration.port = listenPort
        }
        if let host { configuration.host = host }
        if let port { configuration.port = port }
        configuration.maxClients = maxClients
        configuration.idleTimeout = .seconds(idleTimeout)
        configuration.limits.maxRequestLength = maxRequestBytes
        configuration.shutdownDeadline = .seconds(shutdownDeadline)

        let url = databaseURL ?? StockroomDatabase.urlFromEnvironment(environment)
        if migrate {
            try await reportingFailures("serve --migrate") {
                let migrator = Migrator(databaseURL: url, configuration: .init(directory: URL(fileURLWithPath: dir)), logger: logger)
                for step in try await migrator.up() { print("applied \(step.version) \(step.title) in \(step.duration.short)") }
            }
        }

        let pool = PostgresPool(configuration: .init(connection: .init(url), maxConnections: poolSize), logger: logger)
        let server = StockroomServer(stockroom: Stockroom(pool: pool), configuration: configuration, logger: logger)
        var groupConfiguration = ServiceGroupConfiguration(
            services: [.init(service: server)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownDeadline
        groupConfiguration.maximumCancellationDuration = .seconds(2)
        let group = ServiceGroup(configuration: groupConfiguration)
        let address = Task {
            let port = try await server.listeningPort()
            // Straight to the file descriptor: print's buffer would hold it back when
            // standard output is a pipe.
            FileHandle.standardOutput.write(Data("stockroom \(StockroomServer.version) serving on \(configuration.host):\(port) — try: redis-cli -p \(port) PRODUCT.LIST, or: nc \(configuration.host) \(port)\n".utf8))
        }
        do {
            try await group.run()
        } catch {
            address.cancel()
            await pool.close()
            fail("serve", "\(error)")
        }
        await pool.close()
    }
}
