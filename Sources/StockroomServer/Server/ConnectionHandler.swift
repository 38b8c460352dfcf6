import Logging
import NIOCore
import Stockroom
import StockroomDelivery

/// Serves one client connection, on its event loop.
///
/// Requests arrive whole and in order from `RequestDecoder`. Commands that need nothing
/// but the session are answered on the spot; product lookups join the batcher — those of
/// one read together, when the read completes — and answer when their batch comes back,
/// without holding up the requests behind them; any other
/// command runs as a task after every command before it has finished, and before any
/// command after it starts, because it may change the session or depend on what the
/// earlier ones did. Replies go out in request order (`ReplySequence`), one flush per
/// read or per batch of completions.
///
/// No task per connection and no thread switch for a request that needs none: an idle
/// connection costs a few handlers, and PING costs a read and a write.
///
/// Backpressure: while `maxOutstanding` requests are unanswered, or the client is not
/// reading its replies, the handler stops reading from the socket.
final class ConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ServerRequest
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// A command that must wait for the lookups before it.
    private struct Held {
        let run: Command.Run
        let invocation: CommandDispatcher.Invocation
    }

    static let maxOutstanding = 256
    /// Commands with more argument bytes than this run off the event loop.
    static let maxBytesOnLoop = 16 * 1024

    private let dispatcher: CommandDispatcher
    private let registry: ConnectionRegistry
    private var logger: Logger
    private var session: Session
    private var replies = ReplySequence()
    private var backlog = CircularBuffer<ServerRequest>()
    /// A deferred command is running or waiting for earlier lookups: nothing after it starts.
    private var blocked = false
    private var held: Held?
    /// After QUIT, too many failed logins or a protocol error: answer what came before, then close.
    private var closing = false
    private var inputClosed = false
    private var isActive = true
    private var readHeld = false
    private var flushScheduled = false
    /// Lookups started during the current read, handed to the batcher together when it
    /// completes: the pipelined commands of one read share a statement.
    private var pendingLookups: [ProductLookupBatcher.Waiter] = []
    /// Lookups for the standbys (with a read pool), submitted beside `pendingLookups`.
    private var pendingStandbyLookups: [ProductLookupBatcher.Waiter] = []
    private var reading = false
    private let allocator = ByteBufferAllocator()
    /// Joined to the event feed (the session has a subscription).
    private var subscribed = false
    /// Events received and not yet written: while the client is not reading, or while
    /// its login is being confirmed. Past `maxQueuedEvents` the client is too slow for
    /// its subscriptions and is closed (Redis's pubsub output limit).
    private var queuedEvents = CircularBuffer<(event: Event, json: String)>()
    private var confirmingForEvents = false
    static let maxQueuedEvents = 1000

    init(dispatcher: CommandDispatcher, registry: ConnectionRegistry, session: Session, logger: Logger) {
        self.dispatcher = dispatcher
        self.registry = registry
        self.session = session
        self.logger = logger
    }

    // MARK: - Channel events

    func channelActive(context: ChannelHandlerContext) {
        logger.info("connection opened", metadata: ["client.address": "\(context.channel.remoteAddress?.description ?? "unknown")"])
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        isActive = false
        if subscribed { dispatcher.feed.unsubscribe(session.id) }
        logger.info("connection closed", metadata: ["user.id": "\(session.user.map { "\($0.id)" } ?? "-")"])
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }  // nothing sent after QUIT or a protocol error runs
        reading = true
        backlog.append(unwrapInboundIn(data))
        drain(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        reading = false
        submitLookups()
        context.flush()
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The client finished sending (or a graceful shutdown stopped reading): answer
            // what was received, then close.
            inputClosed = true
            reading = false
            submitLookups()
            closeIfDone(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if shouldHoldReads(context: context) {
            readHeld = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, isActive, !queuedEvents.isEmpty {
            writeEvents(context: context)
        }
        if context.channel.isWritable, isActive, !blocked, !backlog.isEmpty {
            // The client caught up: run what waited, and send it — it may be waiting for
            // these replies before it sends anything more.
            drain(context: context)
            scheduleFlush(context: context)
        }
        resumeReadingIfRoom(context: context)
        context.fireChannelWritabilityChanged()
    }

    // MARK: - Running requests

    private func drain(context: ChannelHandlerContext) {
        // While the client is not reading its replies, run nothing more: the requests wait
        // in the backlog (one read's worth at most, since reads are held too).
        // Nor while `maxOutstanding` replies are owed: lookups count, so a client that
        // pipelines thousands of them in one read has at most that many in the shared
        // queue; the rest wait here, in what was read already.
        while !blocked, !closing, context.channel.isWritable, replies.count < Self.maxOutstanding, let request = backlog.popFirst() {
            switch request {
            case .protocolError(let error):
                append(.error(code: "ERR", message: error.description), protocolVersion: session.protocolVersion)
                logger.info("protocol error", metadata: ["error": "\(error.reason)"])
                closeAfterReplies()
            case .command where registry.isShuttingDown:
                append(.error(code: "SHUTDOWN", message: "the server is shutting down"), protocolVersion: session.protocolVersion)
            case .command(let arguments):
                start(arguments, context: context)
            }
        }
        if !reading { submitLookups() }
        writeReady(context: context)
        closeIfDone(context: context)
    }

    private func submitLookups() {
        if !pendingLookups.isEmpty {
            dispatcher.lookups.products(pendingLookups)
            pendingLookups.removeAll(keepingCapacity: true)
        }
        if !pendingStandbyLookups.isEmpty, let standbyLookups = dispatcher.standbyLookups {
            standbyLookups.products(pendingStandbyLookups)
            pendingStandbyLookups.removeAll(keepingCapacity: true)
        }
    }

    private func start(_ arguments: [ByteBuffer], context: ChannelHandlerContext) {
        let version = session.protocolVersion
        switch dispatcher.begin(arguments, session: &session) {
        case .done(let reply):
            append(reply, protocolVersion: session.protocolVersion)
            if session.closeAfterReply { closeAfterReplies() }
            if session.isSubscribed != subscribed { joinOrLeaveFeed(context: context) }
        case .lookup(let key, let invocation):
            let number = replies.reserve()
            let snapshot = session  // a lookup reads the session, never changes it
            let dispatcher = self.dispatcher
            let allocator = self.allocator
            let loop = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let finish: ProductLookupBatcher.Completion = { result in
                let buffer = dispatcher.finishLookup(result, invocation, session: snapshot, protocolVersion: version, allocator: allocator)
                let (handler, context) = loop.value
                handler.complete(number, buffer, context: context)
            }
            if dispatcher.readsFromStandbys(snapshot) {
                // A standby that fails the lookup (away, or behind a migration that made a
                // table) leaves it to the primary, with the same reply slot.
                let eventLoop = context.eventLoop
                pendingStandbyLookups.append(ProductLookupBatcher.Waiter(key: key, connection: snapshot.id, loop: eventLoop) { result in
                    guard case .failure = result else { return finish(result) }
                    dispatcher.standbyFellBack()
                    dispatcher.lookups.products([ProductLookupBatcher.Waiter(key: key, connection: snapshot.id, loop: eventLoop, completion: finish)])
                })
            } else {
                pendingLookups.append(ProductLookupBatcher.Waiter(key: key, connection: snapshot.id, loop: context.eventLoop, completion: finish))
            }
        case .deferred(let run, let invocation):
            blocked = true
            held = Held(run: run, invocation: invocation)
            startHeldIfReady(context: context)
        case .revalidate:
            revalidate(then: arguments, context: context)
        }
    }

    /// Confirms the login (see `LiveSessions`), then begins `request` again on the
    /// session as confirmed — or answers it with the error that kept the check from
    /// happening. Nothing after it starts meanwhile, so its reply keeps its place.
    private func revalidate(then request: [ByteBuffer], context: ChannelHandlerContext) {
        blocked = true
        let dispatcher = self.dispatcher
        let snapshot = session
        let loop = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        Task(executorPreference: EventLoopExecutor(context.eventLoop)) {
            var session = snapshot
            let failure = await dispatcher.revalidate(&session)
            let finish: @Sendable () -> Void = { [session] in
                let (handler, context) = loop.value
                handler.session = session
                handler.blocked = false
                guard handler.isActive else { return }
                if let failure {
                    handler.append(failure, protocolVersion: session.protocolVersion)
                } else {
                    handler.backlog.prepend(.command(request))
                }
                handler.drain(context: context)
                handler.scheduleFlush(context: context)
                handler.resumeReadingIfRoom(context: context)
            }
            if loop.eventLoop.inEventLoop { finish() } else { loop.eventLoop.execute(finish) }
        }
    }

    /// Starts the held command once the lookups before it have answered, so that it takes
    /// effect after them, as the client sent them.
    private func startHeldIfReady(context: ChannelHandlerContext) {
        guard let held, replies.waiting == 0 else { return }
        self.held = nil
        let number = replies.reserve()
        let dispatcher = self.dispatcher
        let snapshot = session
        let loop = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        // A command runs on its event loop: no thread hop there and back. Unless its
        // arguments are large: parsing a megabyte of JSON takes milliseconds, and every
        // other client of the loop would wait for it.
        let executor: any TaskExecutor = held.invocation.arguments.byteCount > Self.maxBytesOnLoop
            ? globalConcurrentExecutor : EventLoopExecutor(context.eventLoop)
        Task(executorPreference: executor) {
            var session = snapshot
            let reply = await dispatcher.runDeferred(held.run, held.invocation, session: &session)
            var buffer = ByteBufferAllocator().buffer(capacity: 256)
            // In the protocol the command leaves behind: HELLO 3's own reply is RESP3.
            reply.write(to: &buffer, protocolVersion: session.protocolVersion)
            // On the loop already, as the task prefers it; the check keeps this correct
            // should the task ever resume elsewhere.
            let finish: @Sendable () -> Void = { [buffer, session] in
                let (handler, context) = loop.value
                handler.session = session
                handler.blocked = false
                if session.closeAfterReply { handler.closeAfterReplies() }
                handler.complete(number, buffer, context: context)
            }
            if loop.eventLoop.inEventLoop { finish() } else { loop.eventLoop.execute(finish) }
        }
    }

    private func complete(_ number: Int, _ buffer: ByteBuffer, context: ChannelHandlerContext) {
        replies.fill(number, with: buffer)
        guard isActive else { return }
        startHeldIfReady(context: context)
        writeReady(context: context)
        scheduleFlush(context: context)
        if !blocked { drain(context: context) }
        closeIfDone(context: context)
        resumeReadingIfRoom(context: context)
    }

    // MARK: - Replies

    private func append(_ reply: Reply, protocolVersion: Int) {
        if case .simple(let text) = reply, let encoded = Self.encoded(text) {
            replies.append(encoded)
            return
        }
        var buffer = allocator.buffer(capacity: 64)
        reply.write(to: &buffer, protocolVersion: protocolVersion)
        replies.append(buffer)
    }

    /// +PONG and +OK, the same bytes every time and in both protocols, encoded once: a
    /// buffer allocated per reply was two of PING's three allocations. Writing one
    /// buffer to many channels is safe: a ByteBuffer is a value, and nothing writes to
    /// this one.
    private static let pong = encode(.simple("PONG"))
    private static let ok = encode(.ok)

    private static func encoded(_ text: String) -> ByteBuffer? {
        switch text {
        case "PONG": pong
        case "OK": ok
        default: nil
        }
    }

    private static func encode(_ reply: Reply) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 8)
        reply.write(to: &buffer, protocolVersion: 2)
        return buffer
    }

    /// Writes every reply whose turn has come; one message per reply (ConnectionGuard
    /// counts them). The flush comes with the end of the read, or `scheduleFlush`.
    private func writeReady(context: ChannelHandlerContext) {
        guard isActive else { return }
        for buffer in replies.takeReady() {
            context.write(wrapOutboundOut(buffer!), promise: nil)
        }
    }

    /// Flushes once the completions queued on the event loop now have run, so that the
    /// replies of one batch share a write.
    private func scheduleFlush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        let loop = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (handler, context) = loop.value
            handler.flushScheduled = false
            if handler.isActive { context.flush() }
        }
    }

    // MARK: - Events (SUBSCRIBE, PSUBSCRIBE)

    private func joinOrLeaveFeed(context: ChannelHandlerContext) {
        subscribed = session.isSubscribed
        context.triggerUserOutboundEvent(ConnectionGuard.Subscribed(on: subscribed), promise: nil)
        guard subscribed else {
            dispatcher.feed.unsubscribe(session.id)
            queuedEvents.removeAll()
            return
        }
        let loop = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        dispatcher.feed.subscribe(session.id) { batch in
            loop.eventLoop.execute {
                let (handler, context) = loop.value
                handler.receive(batch, context: context)
            }
        }
    }

    private func receive(_ batch: [(event: Event, json: String)], context: ChannelHandlerContext) {
        guard isActive, subscribed, !closing else { return }
        queuedEvents.append(contentsOf: batch)
        if queuedEvents.count > Self.maxQueuedEvents {
            logger.warning("closing a subscriber that does not read its events", metadata: ["events.queued": "\(queuedEvents.count)"])
            queuedEvents.removeAll()
            isActive = false
            context.close(promise: nil)
            return
        }
        writeEvents(context: context)
    }

    /// Writes the queued events this session may see and subscribed to, as `message` and
    /// `pmessage` pushes, after the replies already owed. A login is used only while
    /// confirmed (see `LiveSessions`), for events as for commands: when it is due, the
    /// events wait for the check.
    private func writeEvents(context: ChannelHandlerContext) {
        guard !confirmingForEvents, context.channel.isWritable else { return }
        if let token = session.token {
            if let user = dispatcher.liveSessions.user(token) {
                session.user = user
            } else {
                confirmLoginForEvents(context: context)
                return
            }
        }
        let user = session.user
        // Event by event while the socket takes them: what it does not take waits here,
        // counted against the limit, rather than in NIO's unbounded outbound buffer.
        while context.channel.isWritable, let (event, json) = queuedEvents.popFirst() {
            guard let user, user.role == .admin || event.userID == user.id else { continue }
            if session.channels.contains(event.type) {
                append(.push([.bulk("message"), .bulk(event.type), .bulk(json)]), protocolVersion: session.protocolVersion)
            }
            for pattern in session.patterns where EventPattern.matches(pattern, event.type) {
                append(.push([.bulk("pmessage"), .bulk(pattern), .bulk(event.type), .bulk(json)]), protocolVersion: session.protocolVersion)
            }
            writeReady(context: context)
        }
        writeReady(context: context)
        scheduleFlush(context: context)
    }

    private func confirmLoginForEvents(context: ChannelHandlerContext) {
        confirmingForEvents = true
        let dispatcher = self.dispatcher
        let snapshot = session
        let loop = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        Task(executorPreference: EventLoopExecutor(context.eventLoop)) {
            var confirmed = snapshot
            let failure = await dispatcher.revalidate(&confirmed)
            let finish: @Sendable () -> Void = { [confirmed] in
                let (handler, context) = loop.value
                handler.confirmingForEvents = false
                guard handler.isActive else { return }
                if failure == nil, handler.session.token == snapshot.token {
                    // Only the login: the session may have changed its subscriptions meanwhile.
                    handler.session.user = confirmed.user
                    handler.session.token = confirmed.token
                    handler.writeEvents(context: context)
                }
                // The database could not say: the events wait for the next delivery.
            }
            if loop.eventLoop.inEventLoop { finish() } else { loop.eventLoop.execute(finish) }
        }
    }

    // MARK: - Closing and backpressure

    private func closeAfterReplies() {
        closing = true
        backlog.removeAll()
    }

    private func closeIfDone(context: ChannelHandlerContext) {
        guard isActive, closing || inputClosed, backlog.isEmpty, !blocked, replies.isEmpty else { return }
        isActive = false
        // Closing at once would drop replies still queued for a slow socket; an empty
        // write completes only after every write before it.
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer())).whenComplete { _ in channel.close(promise: nil) }
    }

    private func shouldHoldReads(context: ChannelHandlerContext) -> Bool {
        backlog.count + replies.count >= Self.maxOutstanding || !context.channel.isWritable
    }

    private func resumeReadingIfRoom(context: ChannelHandlerContext) {
        guard readHeld, isActive, !shouldHoldReads(context: context) else { return }
        readHeld = false
        context.read()
    }
}
