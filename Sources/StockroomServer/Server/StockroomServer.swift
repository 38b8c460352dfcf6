public import Logging
import Metrics
import NIOCore
public import NIOPosix
public import ServiceLifecycle
public import Stockroom
import Synchronization

/// The TCP service: a line protocol a person can type into `nc` that is also RESP, so
/// redis-cli, redis-benchmark and every Redis client work with it. See docs/PROTOCOL.md.
///
/// Framing happens on the event loop (`RequestDecoder`); each connection is a child task
/// that runs its requests one after another, so replies come back in request order however
/// deeply a client pipelines. A `Service`: on graceful shutdown it stops accepting, lets the
/// command in progress on each connection finish, answers newer ones with `-SHUTDOWN`, and
/// returns once every connection is closed.
public final class StockroomServer: Service, Sendable {
    public static let version = "0.1.0"

    public let configuration: ServerConfiguration
    let dispatcher: CommandDispatcher
    let stats = ServerStats()
    let registry = ConnectionRegistry()
    let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let boundPort = Mutex<(port: Int?, waiters: [CheckedContinuation<Int, any Error>], failure: (any Error)?)>((nil, [], nil))

    public init(stockroom: Stockroom, configuration: ServerConfiguration = ServerConfiguration(), group: MultiThreadedEventLoopGroup = .singleton, logger: Logger = Logger(label: "stockroom.server")) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.dispatcher = CommandDispatcher(stockroom: stockroom, configuration: configuration, stats: stats, version: Self.version, logger: logger)
    }

    /// Every command's name and arity (Redis's convention), for tests and COMMAND.
    public var commandTable: [String: Int] {
        dispatcher.commands.mapValues(\.arity)
    }

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
        let configuration = self.configuration
        let idle = TimeAmount.nanoseconds(CommandDispatcher.nanoseconds(configuration.idleTimeout))
        let slowReader = TimeAmount.nanoseconds(CommandDispatcher.nanoseconds(configuration.slowReaderTimeout))
        let serverChannel: NIOAsyncChannel<NIOAsyncChannel<ServerRequest, ByteBuffer>, Never>
        do {
            serverChannel = try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.writeBufferWaterMark, value: .init(low: configuration.maxPendingReplyBytes / 2, high: configuration.maxPendingReplyBytes))
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .bind(host: configuration.host, port: configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idle))
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RequestDecoder(limits: configuration.limits)))
                        try channel.pipeline.syncOperations.addHandler(ConnectionGuard(slowReaderTimeout: slowReader))
                        return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(inboundType: ServerRequest.self, outboundType: ByteBuffer.self))
                    }
                }
        } catch {
            announce(.failure(error))
            throw error
        }
        let port = serverChannel.channel.localAddress?.port ?? configuration.port
        announce(.success(port))
        logger.info("listening", metadata: ["server.address": "\(configuration.host):\(port)"])

        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await serverChannel.executeThenClose { inbound in
                    for try await connection in inbound {
                        group.addTask { await self.serve(connection) }
                    }
                }
            }
        } onGracefulShutdown: {
            self.logger.info("shutting down: no new connections; finishing commands in progress")
            serverChannel.channel.close(promise: nil)
            self.registry.beginShutdown()
        }
        logger.info("stopped")
    }

    private func serve(_ connection: NIOAsyncChannel<ServerRequest, ByteBuffer>) async {
        let id = stats.newClientID()
        stats.connectionsReceived.add(1, ordering: .relaxed)
        let current = stats.connectedClients.add(1, ordering: .relaxed).newValue
        defer {
            let remaining = stats.connectedClients.subtract(1, ordering: .relaxed).newValue
            Gauge(label: "stockroom.connections").record(remaining)
        }
        Gauge(label: "stockroom.connections").record(current)
        let peer = connection.channel.remoteAddress?.description ?? "unknown"
        var logger = self.logger
        logger[metadataKey: "client.id"] = "\(id)"

        guard current <= configuration.maxClients else {
            stats.rejectedConnections.add(1, ordering: .relaxed)
            logger.warning("refused a connection: max number of clients reached", metadata: ["client.address": "\(peer)"])
            try? await connection.executeThenClose { _, outbound in
                try await outbound.write(ByteBuffer(string: "-ERR max number of clients reached\r\n"))
            }
            return
        }
        guard registry.add(id, connection.channel) else {
            try? await connection.executeThenClose { _, outbound in
                try await outbound.write(ByteBuffer(string: "-SHUTDOWN the server is shutting down\r\n"))
            }
            return
        }
        defer { registry.remove(id) }
        logger.info("connection opened", metadata: ["client.address": "\(peer)"])
        var session = Session(id: id)
        do {
            try await connection.executeThenClose { inbound, outbound in
                try await answer(inbound, outbound, allocator: connection.channel.allocator, session: &session, logger: logger)
            }
        } catch {
            logger.debug("connection ended with an error", metadata: ["error": "\(error)"])
        }
        logger.info("connection closed", metadata: ["client.address": "\(peer)", "user.id": "\(session.user.map { "\($0.id)" } ?? "-")"])
    }

    /// A reply on its way to the writer: known already, or still being computed by a
    /// batched lookup.
    private enum PendingReply: Sendable {
        case ready(Reply, protocolVersion: Int)
        case pending(Task<Reply, Never>, protocolVersion: Int)
    }

    /// Reads requests and answers them in order. Product lookups are handed to the batcher
    /// and run concurrently — so the lookups of a pipelining client share round trips —
    /// while a writer task sends the replies in request order. Any other command first
    /// waits for the lookups before it, so commands still take effect in request order.
    private func answer(
        _ inbound: NIOAsyncChannelInboundStream<ServerRequest>,
        _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        allocator: ByteBufferAllocator,
        session: inout Session,
        logger: Logger
    ) async throws {
        let queue = ReplyQueue<PendingReply>(capacity: 256)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { queue.finish() }
                var buffers: [ByteBuffer] = []
                while let batch = await queue.takeAll() {
                    buffers.removeAll(keepingCapacity: true)
                    for pending in batch {
                        let (reply, version) = switch pending {
                        case .ready(let reply, let version): (reply, version)
                        case .pending(let task, let version): (await task.value, version)
                        }
                        var buffer = allocator.buffer(capacity: 256)
                        reply.write(to: &buffer, protocolVersion: version)
                        buffers.append(buffer)
                    }
                    // One reply per message (ConnectionGuard counts them), one flush per batch.
                    try await outbound.write(contentsOf: buffers)
                    queue.written(batch.count)
                }
            }
            defer { queue.finish() }
            var lookups: [Task<Reply, Never>] = []
            for try await request in inbound {
                let pending: PendingReply
                var close = false
                switch request {
                case .protocolError(let error):
                    pending = .ready(.error(code: "ERR", message: error.description), protocolVersion: session.protocolVersion)
                    close = true
                    logger.info("protocol error", metadata: ["error": "\(error.reason)"])
                case .command where registry.isShuttingDown:
                    pending = .ready(.error(code: "SHUTDOWN", message: "the server is shutting down"), protocolVersion: session.protocolVersion)
                case .command(let arguments) where Self.isProductLookup(arguments):
                    let snapshot = session
                    let dispatcher = self.dispatcher
                    let task = Task {
                        var session = snapshot  // a lookup reads the session, never changes it
                        return await dispatcher.execute(arguments, session: &session)
                    }
                    // Lookups beyond the queue's capacity have been written, so they are done.
                    if lookups.count >= 256 { lookups.removeFirst(lookups.count - 255) }
                    lookups.append(task)
                    pending = .pending(task, protocolVersion: session.protocolVersion)
                case .command(let arguments):
                    for lookup in lookups { _ = await lookup.value }
                    lookups.removeAll()
                    let reply = await dispatcher.execute(arguments, session: &session)
                    pending = .ready(reply, protocolVersion: session.protocolVersion)
                    close = session.closeAfterReply
                }
                guard await queue.push(pending), !close else { break }
            }
            queue.finish()
            try await group.waitForAll()
        }
    }

    /// PRODUCT.GET with its arguments: read-only, so it may run ahead of the replies before it.
    static func isProductLookup(_ arguments: [ByteBuffer]) -> Bool {
        guard arguments.count == 2 || arguments.count == 3, arguments[0].readableBytes == 11 else { return false }
        return String(buffer: arguments[0]).uppercased() == "PRODUCT.GET"
    }
}
