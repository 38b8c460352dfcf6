import ArgumentParser
import Foundation
import LibPQ
import Logging
import Metrics
import Migrations
import NIOPosix
import Prometheus
import ServiceLifecycle
import Stockroom
import StockroomServer

/// `stockroom serve`: the line-protocol TCP service.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve Stockroom's queries over TCP (a line protocol compatible with Redis clients).",
        discussion: "Listens on 127.0.0.1:7379 unless --host/--port or STOCKROOM_LISTEN=host:port say otherwise — on an address other than loopback only with TLS (--tls-cert, --tls-key) or --insecure-no-tls — and for operations (/healthz, /readyz, /metrics) on HTTP at 127.0.0.1:7380 unless --http-host/--http-port or --no-http. See docs/PROTOCOL.md and docs/OPERATIONS.md."
    )

    @Option(help: "Address to listen on (default 127.0.0.1). Any address but loopback needs --tls-cert and --tls-key, or --insecure-no-tls.")
    var host: String?

    @Option(help: "Port to listen on (default 7379).")
    var port: Int?

    @Option(name: .customLong("tls-cert"), help: "Serve the protocol over TLS only: the server's certificate chain (PEM file; the certificate first, then intermediates). Needs --tls-key.")
    var tlsCert: String?

    @Option(name: .customLong("tls-key"), help: "The private key of --tls-cert (unencrypted PEM file).")
    var tlsKey: String?

    @Option(name: .customLong("tls-ca"), help: "Require a client certificate signed by this CA (PEM file) on every connection.")
    var tlsCA: String?

    @Option(name: .customLong("tls-handshake-timeout"), help: "Seconds a client has to complete the TLS handshake before its connection is closed.")
    var tlsHandshakeTimeout = 10

    @Flag(name: .customLong("insecure-no-tls"), help: "Allow plaintext on an address other than loopback (behind a TLS-terminating proxy on a private network): logins and session tokens cross the network in the clear.")
    var insecureNoTLS = false

    @Option(name: .customLong("http-host"), help: "Address of the operations HTTP listener (default 127.0.0.1: /metrics tells a lot about the service).")
    var httpHost: String?

    @Option(name: .customLong("http-port"), help: "Port of the operations HTTP listener: /healthz, /readyz, /metrics (default 7380).")
    var httpPort: Int?

    @Flag(name: .customLong("no-http"), help: "No operations HTTP listener.")
    var noHTTP = false

    @Option(name: .customLong("database-url"), help: "PostgreSQL URL or connection string (default: $DATABASE_URL, else the local database).")
    var databaseURL: String?

    @Option(name: .customLong("read-url"), help: "PostgreSQL URL of standbys for product reads (PRODUCT.GET, LIST, SEARCH), e.g. with target_session_attrs=prefer-standby (default: $STOCKROOM_READ_URL; none: everything is read from --database-url). A connection reads its own writes: after it writes, its reads go to the primary until the standbys have replayed past the write.")
    var readURL: String?

    @Flag(help: "Apply pending migrations before serving.")
    var migrate = false

    @Option(help: "The folder of migration files, for --migrate, and for /readyz, which is ready only once every file is applied.")
    var dir: String = "migrations"

    @Option(name: .customLong("pool-size"), help: "Database connections.")
    var poolSize = 16

    @Option(name: .customLong("event-loops"), help: "Threads serving client connections (default: half the cores, at least one). Busy database connections have threads of their own, and PostgreSQL often shares the machine.")
    var eventLoops: Int?

    /// Half the cores. Measured on two cores (docs/BENCHMARKS.md): one loop against two,
    /// PING at 8 clients went from 0.69× redis-server to par, PRODUCT.GET with -P 16 did
    /// 14% more, and every other row used less CPU per request for the same throughput.
    /// A second loop on two cores mostly adds wake-ups between threads that take turns.
    static var defaultEventLoops: Int { max(1, ProcessInfo.processInfo.activeProcessorCount / 2) }

    @Option(name: .customLong("order-concurrency"), help: "Order transactions run at once, the rest waiting in a short line (default: one per core and one more; 0: as many as the pool allows). Fewer keep each one's latency short.")
    var orderConcurrency: Int?

    @Option(name: .customLong("max-clients"), help: "Most simultaneous client connections.")
    var maxClients = 10_000

    @Option(name: .customLong("idle-timeout"), help: "Seconds before an idle connection is closed.")
    var idleTimeout = 300

    @Option(name: .customLong("max-request-bytes"), help: "Most bytes of one request; larger ones are refused as their headers arrive.")
    var maxRequestBytes = ProtocolLimits().maxRequestLength

    @Option(name: .customLong("shutdown-deadline"), help: "Seconds from SIGTERM to exit, even with the database hung: commands in progress get most of it.")
    var shutdownDeadline = 10

    @Option(name: .customLong("statement-timeout"), help: "statement_timeout of the service's connections: a statement running longer is cancelled and the client gets -TIMEOUT; e.g. 5s, 500ms; 0 for the server's setting.")
    var statementTimeout = "5s"

    @Option(name: .customLong("lock-timeout"), help: "lock_timeout: a statement waiting longer for a lock held elsewhere gives up with -TIMEOUT; 0 for the server's setting.")
    var lockTimeout = "2s"

    @Option(name: .customLong("idle-in-transaction-timeout"), help: "idle_in_transaction_session_timeout: a session idle this long inside a transaction is ended, releasing its locks; 0 for the server's setting.")
    var idleInTransactionTimeout = "10s"

    @Option(name: .customLong("low-stock-threshold"), help: "A product.low_stock event is written when an order takes a product's stock from above this to it or below.")
    var lowStockThreshold = 5

    @Option(name: .customLong("event-retention"), help: "Events older than this are deleted, hourly, e.g. 168h; 0 keeps them.")
    var eventRetention = "168h"

    @Option(name: .customLong("query-deadline"), help: "The service's own deadline per database operation, for when the database cannot end a statement (frozen, partitioned): then -TIMEOUT and the connection is replaced. Default: the statement timeout plus 0.5 s.")
    var queryDeadline: String?

    @Flag(name: .customLong("no-webhooks"), help: "Leave webhook delivery to `stockroom worker` processes.")
    var noWebhooks = false

    @Flag(name: .customLong("no-jobs"), help: "Leave refunds and e-mails to `stockroom worker` processes.")
    var noJobs = false

    @OptionGroup var integrations: IntegrationOptions

    func validate() throws {
        if let port, !(0...65535).contains(port) { throw ValidationError("--port must be 0 to 65535") }
        if let httpPort, !(0...65535).contains(httpPort) { throw ValidationError("--http-port must be 0 to 65535") }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        if tlsCA != nil, tlsCert == nil { throw ValidationError("--tls-ca needs --tls-cert and --tls-key: client certificates are checked over TLS") }
        if tlsHandshakeTimeout < 1 { throw ValidationError("--tls-handshake-timeout must be at least 1 second") }
        if noHTTP, httpPort != nil || httpHost != nil { throw ValidationError("--no-http leaves nothing for --http-host or --http-port to set") }
        if poolSize < 1 { throw ValidationError("--pool-size must be at least 1") }
        if let orderConcurrency, orderConcurrency < 0 { throw ValidationError("--order-concurrency must be 0 or more") }
        if let eventLoops, !(1...256).contains(eventLoops) { throw ValidationError("--event-loops must be 1 to 256") }
        if maxClients < 1 { throw ValidationError("--max-clients must be at least 1") }
        if idleTimeout < 1 { throw ValidationError("--idle-timeout must be at least 1 second") }
        if shutdownDeadline < 1 { throw ValidationError("--shutdown-deadline must be at least 1 second") }
        for (name, value) in [("--statement-timeout", statementTimeout), ("--lock-timeout", lockTimeout), ("--idle-in-transaction-timeout", idleInTransactionTimeout), ("--query-deadline", queryDeadline ?? "1s"), ("--event-retention", eventRetention)] where parseDuration(value) == nil {
            throw ValidationError("\(name): expected a duration like 5s, 500ms or 2m, got '\(value)'")
        }
        if lowStockThreshold < 0 { throw ValidationError("--low-stock-threshold must be 0 or more") }
        if let queryDeadline, parseDuration(queryDeadline) == .zero { throw ValidationError("--query-deadline must be more than 0") }
        let limits = ProtocolLimits()
        if maxRequestBytes < limits.maxArgumentLength + 64 {
            throw ValidationError("--max-request-bytes must be at least \(limits.maxArgumentLength + 64), room for one argument of the largest size")
        }
    }

    func run() async throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        // Once per process, here: libraries record through swift-metrics and never choose
        // its backend. /metrics shows this registry.
        let metrics = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics))
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
        if let tlsCert, let tlsKey {
            configuration.tls = .init(certificateChainFile: tlsCert, privateKeyFile: tlsKey, clientCAFile: tlsCA)
        }
        configuration.tlsHandshakeTimeout = .seconds(tlsHandshakeTimeout)
        configuration.allowsPlaintextBeyondLoopback = insecureNoTLS
        // Before the database is touched: an address it must not listen on, or TLS files
        // it cannot use, end the command here, with the reason.
        do {
            try configuration.validateListening()
        } catch {
            fail("serve", "\(error)")
        }
        configuration.maxClients = maxClients
        configuration.idleTimeout = .seconds(idleTimeout)
        configuration.limits.maxRequestLength = maxRequestBytes
        configuration.shutdownDeadline = .seconds(shutdownDeadline)
        configuration.eventRetention = parseDuration(eventRetention) ?? configuration.eventRetention
        // Webhook requests share the pool with commands: a quarter of it at most.
        configuration.webhooks?.concurrency = max(1, poolSize / 4)
        if noWebhooks { configuration.webhooks = nil }
        configuration.payments = try integrations.payments(environment)
        if noJobs { configuration.jobs = nil }

        let url = databaseURL ?? StockroomDatabase.urlFromEnvironment(environment)
        if migrate {
            try await reportingFailures("serve --migrate") {
                let migrator = Migrator(databaseURL: url, configuration: .init(directory: URL(fileURLWithPath: dir)), logger: logger)
                for step in try await migrator.ensureSchema() { print("applied \(step.version) \(step.title) in \(step.duration.short)") }
            }
        }

        var poolConfiguration = PostgresPool.Configuration(connection: .init(url), maxConnections: poolSize)
        poolConfiguration.statementTimeout = parseDuration(statementTimeout).flatMap { $0 == .zero ? nil : $0 }
        poolConfiguration.lockTimeout = parseDuration(lockTimeout).flatMap { $0 == .zero ? nil : $0 }
        poolConfiguration.idleInTransactionSessionTimeout = parseDuration(idleInTransactionTimeout).flatMap { $0 == .zero ? nil : $0 }
        poolConfiguration.operationTimeout = queryDeadline.flatMap(parseDuration)
        // Read by the outbox's trigger (migration 0008) in this service's transactions.
        poolConfiguration.connection.parameters["stockroom.low_stock_threshold"] = String(lowStockThreshold)
        let pool = PostgresPool(configuration: poolConfiguration, logger: logger)
        let stockroom = Stockroom(pool: pool, orderConcurrency: orderConcurrency.map { $0 == 0 ? nil : $0 } ?? AdmissionGate.defaultLimit)
        var readPool: PostgresPool?
        if let readURL = readURL ?? environment["STOCKROOM_READ_URL"].flatMap({ $0.isEmpty ? nil : $0 }) {
            var readConfiguration = poolConfiguration
            readConfiguration.connection = .init(readURL)
            readConfiguration.connection.parameters = poolConfiguration.connection.parameters
            readPool = PostgresPool(configuration: readConfiguration, logger: logger)
        }
        if let mail = try integrations.mail(environment, stockroom: stockroom, logger: logger) { configuration.jobHandlers.append(mail) }
        // Its threads live as long as the process: the server's listener runs to the end.
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: eventLoops ?? Self.defaultEventLoops)
        let server = StockroomServer(stockroom: stockroom, readPool: readPool, configuration: configuration, group: loops, logger: logger)
        var operations: OperationsServer?
        if !noHTTP {
            var operationsConfiguration = OperationsServer.Configuration()
            if let httpHost { operationsConfiguration.host = httpHost }
            if let httpPort { operationsConfiguration.port = httpPort }
            let migrator = Migrator(databaseURL: url, configuration: .init(directory: URL(fileURLWithPath: dir)), logger: logger)
            operations = OperationsServer(server: server, migrator: migrator, registry: metrics, configuration: operationsConfiguration, logger: logger)
        }
        // The operations listener first: the group stops services in reverse order, so it
        // answers (/readyz: shutting down) while the TCP service drains.
        var groupConfiguration = ServiceGroupConfiguration(
            services: (operations.map { [ServiceGroupConfiguration.ServiceConfiguration(service: $0)] } ?? []) + [.init(service: server)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        // The whole shutdown fits in --shutdown-deadline: commands in progress get all of
        // it but a second; then they are cancelled (half a second), then the pool closes
        // (half a second; connections still out — the database hung — are left to the
        // process's exit).
        let deadline = configuration.shutdownDeadline
        groupConfiguration.maximumGracefulShutdownDuration = deadline > .seconds(1) ? deadline - .seconds(1) : deadline / 2
        groupConfiguration.maximumCancellationDuration = .milliseconds(500)
        let group = ServiceGroup(configuration: groupConfiguration)
        let address = Task {
            let port = try await server.listeningPort()
            // Straight to the file descriptor: print's buffer would hold it back when
            // standard output is a pipe.
            let greeting = configuration.tls == nil
                ? "stockroom \(StockroomServer.version) serving on \(configuration.host):\(port) — try: redis-cli -p \(port) PRODUCT.LIST, or: nc \(configuration.host) \(port)\n"
                : "stockroom \(StockroomServer.version) serving TLS on \(configuration.host):\(port) — try: redis-cli --tls --cacert CA.pem -p \(port) PRODUCT.LIST\n"
            FileHandle.standardOutput.write(Data(greeting.utf8))
            if let operations {
                let httpPort = try await operations.listeningPort()
                FileHandle.standardOutput.write(Data("operations on http://\(operations.configuration.host):\(httpPort)/ — /healthz, /readyz, /metrics\n".utf8))
            }
        }
        do {
            try await group.run()
        } catch {
            address.cancel()
            await pool.close(within: .milliseconds(500))
            fail("serve", "\(error)")
        }
        if let readPool { _ = await readPool.close(within: .milliseconds(200)) }
        if !(await pool.close(within: .milliseconds(500))) {
            logger.warning("exiting with database connections still busy: the database did not answer in time")
            // Without the exit handlers: OpenSSL's would free what those connections'
            // threads, still inside libpq, are using, and crash the process on its way out.
            fflush(nil)
            _exit(0)
        }
    }
}
