public import LibPQ
public import Logging
import Metrics
import NIOCore
public import NIOPosix
import NIOSSL
public import ServiceLifecycle
public import Stockroom
import StockroomDelivery
import Synchronization

/// The TCP service: a line protocol a person can type into `nc` that is also RESP, so
/// redis-cli, redis-benchmark and every Redis client work with it. See docs/PROTOCOL.md.
///
/// Each connection is served on its event loop (with TLS, `NIOSSLServerHandler` and
/// `TLSHandshakeDeadline` first; then `RequestDecoder`, `ConnectionGuard` and
/// `ConnectionHandler`): replies come back in request order however deeply a client
/// pipelines. A `Service`: on graceful shutdown it stops accepting, lets the command in
/// progress on each connection finish, answers newer ones with `-SHUTDOWN`, and returns
/// once every connection is closed.
public final class StockroomServer: Service, Sendable {
    public static let version = "0.1.0"

    public let configuration: ServerConfiguration
    let dispatcher: CommandDispatcher
    let stats = ServerStats()
    let registry = ConnectionRegistry()
    let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let boundPort = Mutex<(port: Int?, waiters: [CheckedContinuation<Int, any Error>], failure: (any Error)?)>((nil, [], nil))

    /// - Parameter readPool: connections to standbys (`target_session_attrs=prefer-standby`)
    ///   for product reads — PRODUCT.GET, LIST, SEARCH — with read-your-writes per
    ///   connection (see `ReplicaProgress`); nil reads everything from `stockroom`'s pool.
    public init(stockroom: Stockroom, readPool: PostgresPool? = nil, configuration: ServerConfiguration = ServerConfiguration(), group: MultiThreadedEventLoopGroup = .singleton, logger: Logger = Logger(label: "stockroom.server")) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.dispatcher = CommandDispatcher(stockroom: stockroom, readPool: readPool, configuration: configuration, stats: stats, version: Self.version, logger: logger)
    }

    /// Every command's name and arity (Redis's convention), for tests and COMMAND.
    public var commandTable: [String: Int] {
        dispatcher.commands.mapValues(\.arity)
    }

    /// Connections subscribed to events right now (SUBSCRIBE, PSUBSCRIBE).
    public var subscriberCount: Int { dispatcher.feed.subscriberCount }

    /// The port the server listens on, once it does (useful with port 0).
    public func listeningPort() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let ready = boundPort.withLock { state -> Result<Int, any Error>? in
                if let port = state.port { return .success(port) }
                if let failure = state.failure { return .failure(failure) }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    private func announce(_ result: Result<Int, any Error>) {
        let waiters = boundPort.withLock { state in
            switch result {
            case .success(let port): state.port = port
            case .failure(let error): state.failure = error
            }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(with: result) }
    }

    public func run() async throws {
        let serverChannel: any Channel
        do {
            // Before binding: no plaintext beyond loopback unless allowed, and TLS files
            // that do not make a server stop it here rather than fail every handshake.
            try configuration.validateListening()
            let tls = try configuration.tls?.makeContext()
            serverChannel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.writeBufferWaterMark, value: .init(low: configuration.maxPendingReplyBytes / 2, high: configuration.maxPendingReplyBytes))
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try self.setUp(channel, tls: tls) }
                }
                .bind(host: configuration.host, port: configuration.port)
                .get()
        } catch {
            announce(.failure(error))
            throw error
        }
        let port = serverChannel.localAddress?.port ?? configuration.port
        announce(.success(port))
        logger.info("listening", metadata: ["server.address": "\(configuration.host):\(port)", "server.tls": "\(configuration.tls != nil)"])
        let purging = Task { await purgeSessionsPeriodically() }
        defer { purging.cancel() }
        let feeding = Task { await dispatcher.feed.run() }
        defer { feeding.cancel() }
        let tracking = dispatcher.replicas.map { replicas in Task { await replicas.run() } }
        defer { tracking?.cancel() }
        // Webhooks go out from here too unless configured off; the feed numbers events
        // and its NOTIFY wakes the worker.
        let worker = configuration.webhooks.map {
            WebhookWorker(stockroom: dispatcher.stockroom, configuration: $0, encode: EventJSON.encode, logger: logger)
        }
        let delivering = worker.map { worker in Task { await worker.run() } }
        defer { delivering?.cancel() }
        // Refunds and e-mails, when there is something to do them with.
        let jobWorker = makeJobWorker()
        let performing = jobWorker.map { worker in Task { await worker.run() } }
        defer { performing?.cancel() }

        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                try? await serverChannel.closeFuture.get()
                await registry.waitUntilEmpty()
            } onGracefulShutdown: {
                self.logger.info("shutting down: no new connections; finishing commands in progress")
                worker?.stop()
                jobWorker?.stop()
                serverChannel.close(promise: nil)
                self.registry.beginShutdown()
            }
        } onCancel: {
            // Past the graceful deadline: close everything now.
            serverChannel.close(promise: nil)
            self.registry.beginShutdown()
            self.registry.closeAll()
            delivering?.cancel()
            performing?.cancel()
        }
        // Webhook requests and jobs in flight finish and are recorded: requests for at
        // most their timeout and a second, jobs (an SMTP exchange, a refund) for a few
        // seconds; then they are abandoned to their leases and done again elsewhere or
        // later. With none open, only a moment: the worker may be waiting on a database
        // that does not answer. The wait ends at once when the shutdown deadline cancels
        // this task: abandoned work must not hold the process past it.
        worker?.stop()
        jobWorker?.stop()
        // Both at once: the longest patience bounds the whole wait, not their sum.
        async let webhooksDone: Void = {
            guard let worker, let delivering else { return }
            let patience = worker.requestsInFlight > 0 ? worker.configuration.requestTimeout + .seconds(1) : .milliseconds(500)
            await Self.wait(for: delivering, atMost: patience)
        }()
        async let jobsDone: Void = { if let performing { await Self.wait(for: performing, atMost: .seconds(3)) } }()
        _ = await (webhooksDone, jobsDone)
        delivering?.cancel()
        performing?.cancel()
        // No client is left to look anything up: the lookup worker that waits for one
        // gives its connection back, so the pool can close.
        dispatcher.lookups.shutDown()
        dispatcher.standbyLookups?.shutDown()
        logger.info("stopped")
    }

    /// Returns when `task` ends, `patience` has passed, or the caller is cancelled,
    /// whichever comes first. Awaiting a task's value is not cancellable: the task may be
    /// stuck in a database call that does not return.
    static func wait(for task: Task<Void, Never>, atMost patience: Duration) async {
        let (ended, signal) = AsyncStream<Void>.makeStream()
        let watchers = [
            Task { await task.value; signal.finish() },
            Task { try? await Task.sleep(for: patience); signal.finish() },
        ]
        await withTaskCancellationHandler {
            for await _ in ended {}
        } onCancel: {
            signal.finish()
        }
        for watcher in watchers { watcher.cancel() }
    }

    /// The job worker for refunds (with a payment processor) and the configured handlers
    /// (e-mail); nil when jobs are left to `stockroom worker` or nothing would handle them.
    private func makeJobWorker() -> JobWorker? {
        guard let jobs = configuration.jobs else { return nil }
        let stockroom = dispatcher.stockroom
        var handlers = configuration.jobHandlers
        if let payments = configuration.payments {
            handlers.append(RefundJobHandler(payments: stockroom.payments, processor: PaymentProcessor(configuration: payments)))
        }
        guard !handlers.isEmpty else { return nil }
        return JobWorker(stockroom: stockroom, handlers: handlers, configuration: jobs, logger: logger)
    }

    /// Deletes expired and revoked sessions now and then, so that logins, which each add
    /// one, do not grow the table for ever. Any instance may do it; they do not conflict.
    private func purgeSessionsPeriodically() async {
        let interval = configuration.sessionPurgeInterval
        guard interval > .zero else { return }
        while !Task.isCancelled {
            do {
                var purged = 0
                // In batches, each a short statement, until a batch comes back short.
                while !Task.isCancelled {
                    let batch = try await dispatcher.stockroom.accounts.purgeSessions()
                    purged += batch
                    if batch < 10_000 { break }
                }
                if purged > 0 { logger.info("purged expired sessions", metadata: ["sessions.purged": "\(purged)"]) }
                try await dispatcher.stockroom.accounts.pruneLoginFailures(idle: dispatcher.throttle.limits.forgetAfter)
            } catch {
                logger.debug("session purge failed; trying again later", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// Sets up an accepted connection, on its event loop: counts it, puts TLS in front
    /// when configured (refusals, too, go out over TLS), refuses it when the server is full
    /// or shutting down, and otherwise installs the handlers that serve it.
    private func setUp(_ channel: any Channel, tls: NIOSSLContext?) throws {
        let id = stats.newClientID()
        stats.connectionsReceived.add(1, ordering: .relaxed)
        let current = stats.connectedClients.add(1, ordering: .relaxed).newValue
        Gauge(label: "stockroom.connections").record(current)
        let registry = self.registry
        let stats = self.stats
        channel.closeFuture.whenComplete { _ in
            registry.remove(id)
            let remaining = stats.connectedClients.subtract(1, ordering: .relaxed).newValue
            Gauge(label: "stockroom.connections").record(remaining)
        }
        var logger = self.logger
        logger[metadataKey: "client.id"] = "\(id)"
        let pipeline = channel.pipeline.syncOperations
        if let tls {
            // A plaintext client fails the handshake and is closed without a byte of
            // protocol; one that never finishes it is closed at the deadline.
            try pipeline.addHandler(NIOSSLServerHandler(context: tls))
            try pipeline.addHandler(TLSHandshakeDeadline(timeout: .nanoseconds(CommandDispatcher.nanoseconds(configuration.tlsHandshakeTimeout))))
        }
        guard current <= configuration.maxClients else {
            stats.rejectedConnections.add(1, ordering: .relaxed)
            logger.warning("refused a connection: max number of clients reached", metadata: ["client.address": "\(channel.remoteAddress?.description ?? "unknown")"])
            try pipeline.addHandler(RefusingHandler(reply: "-ERR max number of clients reached\r\n"))
            return
        }
        guard registry.add(id, channel) else {
            try pipeline.addHandler(RefusingHandler(reply: "-SHUTDOWN the server is shutting down\r\n"))
            return
        }
        let idle = TimeAmount.nanoseconds(CommandDispatcher.nanoseconds(configuration.idleTimeout))
        let slowReader = TimeAmount.nanoseconds(CommandDispatcher.nanoseconds(configuration.slowReaderTimeout))
        try pipeline.addHandler(ByteToMessageHandler(RequestDecoder(limits: configuration.limits)))
        try pipeline.addHandler(ConnectionGuard(idleTimeout: idle, slowReaderTimeout: slowReader))
        try pipeline.addHandler(ConnectionHandler(dispatcher: dispatcher, registry: registry, session: Session(id: id, address: channel.remoteAddress?.ipAddress), logger: logger))
    }
}

/// Answers a connection the server will not serve with one error, then closes it.
final class RefusingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let reply: String

    init(reply: String) { self.reply = reply }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: reply))).whenComplete { _ in channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}  // nothing it sends is run
}
