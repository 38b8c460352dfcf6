public import Logging
public import Migrations
import NIOCore
public import Prometheus
public import ServiceLifecycle
import Hummingbird
import StockroomDelivery

/// HTTP for operations, beside the TCP service: `GET /healthz` (the process is up),
/// `GET /readyz` (the database answers and the schema is current; see `Readiness`) and
/// `GET /metrics` (every swift-metrics metric of the process, in Prometheus's text
/// format, with the gauges of `OperationsGauges`). See docs/OPERATIONS.md.
///
/// A `Service` for the same `ServiceGroup` as the `StockroomServer`, listed before it:
/// the group stops services in reverse order, so on SIGTERM the TCP service drains first
/// while this one still answers — `/readyz` with 503 `shutting down`, so a load balancer
/// stops sending clients — and then this one stops (Hummingbird finishes the requests in
/// progress), all within the group's deadline. No database work happens on a request
/// but `/readyz`'s `SELECT 1` (and its cached schema check).
public final class OperationsServer: Service, Sendable {
    public struct Configuration: Sendable {
        /// Loopback unless told otherwise: the metrics tell a lot about the service.
        public var host = "127.0.0.1"
        /// 7380: the TCP port plus one. 0 picks a free port (tests).
        public var port = 7380
        /// How long `/readyz` waits for the database's `SELECT 1`.
        public var readinessDeadline: Duration = .seconds(1)
        /// How long a schema check's answer is kept.
        public var schemaCheckInterval: Duration = .seconds(5)
        /// How often the outbox's lag is read for `/metrics`.
        public var outboxSampleInterval: Duration = .seconds(5)

        public init() {}
    }

    public let configuration: Configuration
    private let server: StockroomServer
    private let registry: PrometheusCollectorRegistry
    private let readiness: Readiness
    private let gauges: OperationsGauges
    private let logger: Logger
    private let port = ListeningPort()

    /// - Parameters:
    ///   - migrator: reads the migrations folder the binary ships with, for `/readyz`;
    ///     nil skips the schema check.
    ///   - registry: the registry swift-metrics records into (the process's
    ///     `PrometheusMetricsFactory`'s); `/metrics` shows it.
    public init(server: StockroomServer, migrator: Migrator?, registry: PrometheusCollectorRegistry, configuration: Configuration = Configuration(), logger: Logger) {
        self.server = server
        self.registry = registry
        self.configuration = configuration
        self.logger = logger
        let stockroom = server.dispatcher.stockroom
        readiness = Readiness(pool: stockroom.pool, migrator: migrator, deadline: configuration.readinessDeadline, schemaCheckInterval: configuration.schemaCheckInterval, logger: logger)
        gauges = OperationsGauges(pool: stockroom.pool, events: stockroom.events, subscribers: { [feed = server.dispatcher.feed] in feed.subscriberCount }, logger: logger)
    }

    /// The port it listens on, once it does (useful with port 0).
    public func listeningPort() async throws -> Int {
        try await port.wait()
    }

    public func run() async throws {
        let port = self.port
        let fallbackPort = configuration.port
        let application = Application(
            router: makeRouter(),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port)),
            onServerRunning: { channel in port.announce(.success(channel.localAddress?.port ?? fallbackPort)) },
            logger: logger
        )
        let sampling = Task { [gauges, configuration] in
            await gauges.sampleOutbox(every: configuration.outboxSampleInterval, deadline: configuration.readinessDeadline)
        }
        defer { sampling.cancel() }
        do {
            try await application.run()
        } catch {
            port.announce(.failure(error))
            throw error
        }
        port.announce(.failure(CancellationError()))
    }

    /// Every route. Operations endpoints answer GET only; the payment webhook POST.
    func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        get(router, "healthz") { _ in .text(.ok, "ok\n") }
        get(router, "readyz") { [self] _ in await ready() }
        get(router, "metrics") { [self] _ in metrics() }
        // Only with a payment processor that has a webhook secret: without one, no
        // request could be told from a forgery.
        if let payments = server.configuration.payments, let secret = payments.webhookSecret {
            let webhook = PaymentWebhook(payments: server.dispatcher.stockroom.payments, secret: secret, tolerance: payments.webhookTolerance, logger: logger)
            addPaymentWebhookRoute(to: router, webhook: webhook)
        }
        return router
    }

    private func ready() async -> Response {
        if server.registry.isShuttingDown { return .text(.serviceUnavailable, "shutting down\n") }
        if let reason = await readiness.check() { return .text(.serviceUnavailable, reason + "\n") }
        return .text(.ok, "ready\n")
    }

    private func metrics() -> Response {
        gauges.recordCheapValues()
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// A GET route whose path answers every other common method with 405 (rather than
    /// the router's 404), saying which one it takes.
    private func get(_ router: Router<BasicRequestContext>, _ path: RouterPath, _ handler: @escaping @Sendable (Request) async -> Response) {
        router.get(path) { request, _ in await handler(request) }
        for method: HTTPRequest.Method in [.head, .post, .put, .patch, .delete, .options] {
            router.on(path, method: method) { _, _ in
                var response = Response.text(.methodNotAllowed, "method not allowed\n")
                response.headers[.allow] = "GET"
                return response
            }
        }
    }
}

extension Response {
    fileprivate static func text(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
