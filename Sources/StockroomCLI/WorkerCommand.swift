import ArgumentParser
import Foundation
import LibPQ
import Logging
import ServiceLifecycle
import Stockroom
import StockroomDelivery
import StockroomServer

/// `stockroom worker`: webhook delivery, refunds and e-mails without the protocol. Also
/// numbers committed events (the sequencer), since no `stockroom serve` may be running to
/// do it.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Deliver events to webhook endpoints (signed HTTP POSTs), refunds and e-mails, without serving the protocol.",
        discussion: "Run any number, beside `stockroom serve` or without it: each event reaches each endpoint once in normal operation, in order; each job is leased to one worker at a time. SIGTERM lets requests in progress finish. See docs/EVENTS.md."
    )

    @Option(name: .customLong("database-url"), help: "PostgreSQL URL or connection string (default: $DATABASE_URL, else the local database).")
    var databaseURL: String?

    @Option(name: .customLong("pool-size"), help: "Database connections.")
    var poolSize = 4

    @Option(help: "Requests in flight at once, to different endpoints.")
    var concurrency = 16

    @Option(name: .customLong("request-timeout"), help: "Deadline of one webhook request, e.g. 10s.")
    var requestTimeout = "10s"

    @Option(name: .customLong("disable-after"), help: "Disable an endpoint after this many dead deliveries in a row.")
    var disableAfter = 5

    @Option(name: .customLong("shutdown-deadline"), help: "Seconds from SIGTERM to exit: requests in progress get most of it.")
    var shutdownDeadline = 15

    @OptionGroup var integrations: IntegrationOptions

    func validate() throws {
        if poolSize < 2 { throw ValidationError("--pool-size must be at least 2") }
        if concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
        if disableAfter < 1 { throw ValidationError("--disable-after must be at least 1") }
        if shutdownDeadline < 1 { throw ValidationError("--shutdown-deadline must be at least 1 second") }
        guard let timeout = parseDuration(requestTimeout), timeout > .zero else {
            throw ValidationError("--request-timeout: expected a duration like 10s or 500ms, got '\(requestTimeout)'")
        }
    }

    func run() async throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        let logger = Logger(label: "stockroom.worker")
        let environment = ProcessInfo.processInfo.environment
        let payments = try integrations.payments(environment)
        let url = databaseURL ?? StockroomDatabase.urlFromEnvironment(environment)
        var poolConfiguration = PostgresPool.Configuration(connection: .init(url), maxConnections: poolSize)
        poolConfiguration.statementTimeout = .seconds(5)
        poolConfiguration.lockTimeout = .seconds(2)
        poolConfiguration.idleInTransactionSessionTimeout = .seconds(10)
        let pool = PostgresPool(configuration: poolConfiguration, logger: logger)
        var configuration = WebhookWorker.Configuration()
        configuration.sequencesEvents = true
        configuration.concurrency = concurrency
        configuration.requestTimeout = parseDuration(requestTimeout) ?? configuration.requestTimeout
        configuration.disableAfterDeadDeliveries = disableAfter
        let stockroom = Stockroom(pool: pool)
        let worker = WebhookWorker(stockroom: stockroom, configuration: configuration, encode: StockroomServer.eventJSON, logger: logger)
        var handlers: [any JobHandler] = []
        if let payments { handlers.append(RefundJobHandler(payments: stockroom.payments, processor: PaymentProcessor(configuration: payments))) }
        if let mail = try integrations.mail(environment, stockroom: stockroom, logger: logger) { handlers.append(mail) }
        let jobs = handlers.isEmpty ? nil : JobWorker(stockroom: stockroom, handlers: handlers, logger: logger)
        var groupConfiguration = ServiceGroupConfiguration(services: [.init(service: DeliveryService(worker: worker, jobs: jobs))], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(shutdownDeadline)
        groupConfiguration.maximumCancellationDuration = .milliseconds(500)
        let kinds = jobs.map { $0.kinds.map(\.rawValue).sorted().joined(separator: ",") } ?? "none"
        logger.info("delivering webhooks", metadata: ["worker.concurrency": "\(concurrency)", "worker.jobs": "\(kinds)"])
        do {
            try await ServiceGroup(configuration: groupConfiguration).run()
        } catch {
            await pool.close(within: .milliseconds(500))
            fail("worker", "\(error)")
        }
        await pool.close(within: .seconds(1))
    }
}

/// The workers as a Service: graceful shutdown lets requests and jobs in progress finish
/// and be recorded; cancellation (past the deadline) abandons them to their leases.
struct DeliveryService: Service {
    let worker: WebhookWorker
    let jobs: JobWorker?

    func run() async throws {
        await withGracefulShutdownHandler {
            async let performing: Void = jobs?.run() ?? ()
            await worker.run()
            await performing
        } onGracefulShutdown: {
            worker.stop()
            jobs?.stop()
        }
    }
}
