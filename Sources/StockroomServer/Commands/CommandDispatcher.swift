import Foundation
import LibPQ
import Logging
import Metrics
import NIOCore
import Stockroom
import StockroomDelivery

/// Runs one request for one session: looks the command up, checks its arity and who may
/// run it, runs it, and turns every failure into an error reply with a protocol code.
final class CommandDispatcher: Sendable {
    let stockroom: Stockroom
    let configuration: ServerConfiguration
    let stats: ServerStats
    let throttle: LoginThrottle
    let liveSessions: LiveSessions
    let lookups: ProductLookupBatcher
    /// With a read pool: product reads from the standbys, and what decides when a
    /// connection may use them.
    let standbyProducts: ProductRepository?
    let standbyLookups: ProductLookupBatcher?
    let replicas: ReplicaTracker?
    /// Product reads by where they went (made once: a metric per request costs).
    private let readCounters: (standby: Counter, primary: Counter, fellBack: Counter)
    let feed: EventFeed
    let webhooks: WebhookRepository
    let jobs: JobRepository
    /// nil when no payment processor is configured.
    let checkout: Checkout?
    let logger: Logger
    let version: String
    let commands: [String: Command]
    /// Made once per command, not per request (each creation goes through the metrics
    /// factory); error outcomes are rare and made as they come.
    private let metrics: [String: CommandMetrics]

    init(stockroom: Stockroom, readPool: PostgresPool? = nil, configuration: ServerConfiguration, stats: ServerStats, version: String, logger: Logger) {
        self.stockroom = stockroom
        self.configuration = configuration
        self.stats = stats
        self.version = version
        self.logger = logger
        var limits = LoginThrottle.Limits()
        limits.failedLoginBurst = configuration.failedLoginsPerAddress.burst
        limits.failedLoginRefill = configuration.failedLoginsPerAddress.refill
        limits.registrationBurst = configuration.registrationsPerAddress.burst
        limits.registrationRefill = configuration.registrationsPerAddress.refill
        self.throttle = LoginThrottle(limits: limits)
        self.liveSessions = LiveSessions(interval: configuration.sessionCheckInterval)
        // Half the pool at most for batched lookups, so writes always find a connection.
        let inFlight = min(configuration.maxLookupStatementsInFlight, (stockroom.pool.configuration.maxConnections + 1) / 2)
        self.lookups = ProductLookupBatcher(products: stockroom.products, pool: stockroom.pool, maxInFlight: inFlight)
        if let readPool {
            let products = ProductRepository(pool: readPool)
            standbyProducts = products
            standbyLookups = ProductLookupBatcher(products: products, pool: readPool, maxInFlight: min(configuration.maxLookupStatementsInFlight, (readPool.configuration.maxConnections + 1) / 2))
            replicas = ReplicaTracker(primary: stockroom.pool, standbys: readPool, interval: configuration.replicaPollInterval, logger: logger)
        } else {
            (standbyProducts, standbyLookups, replicas) = (nil, nil, nil)
        }
        readCounters = (
            Counter(label: "stockroom.reads", dimensions: [("from", "standby")]), Counter(label: "stockroom.reads", dimensions: [("from", "primary")]),
            Counter(label: "stockroom.reads", dimensions: [("from", "primary_after_standby_failed")])
        )
        self.webhooks = WebhookRepository(pool: stockroom.pool)
        self.jobs = JobRepository(pool: stockroom.pool)
        self.checkout = configuration.payments.map { Checkout(payments: stockroom.payments, processor: PaymentProcessor(configuration: $0)) }
        self.feed = EventFeed(events: stockroom.events, connection: stockroom.pool.configuration.connection, retention: configuration.eventRetention, logger: logger)
        var table: [String: Command] = [:]
        for command in Self.connectionCommands + Self.accountCommands + Self.productCommands + Self.orderCommands + Self.eventCommands + Self.webhookCommands + Self.jobCommands {
            table[command.name] = command
        }
        self.commands = table
        self.metrics = table.mapValues { CommandMetrics(name: $0.name.lowercased()) }
    }

    /// One request on its way through the dispatcher: what metrics and logs need.
    struct Invocation: Sendable {
        let name: String
        let arguments: Arguments
        let started: ContinuousClock.Instant
        /// nil for an unknown command.
        let metrics: CommandMetrics?
    }

    /// How a request proceeds after `begin`.
    enum Step: Sendable {
        /// Answered already: an immediate command, or a request refused.
        case done(Reply)
        /// Look the product up (`lookups`), then `finishLookup`.
        case lookup(ProductLookupBatcher.Key, Invocation)
        /// Run it as a task with `runDeferred`.
        case deferred(Command.Run, Invocation)
        /// The session's login is due for a check: `revalidate` it, then begin the same
        /// request again.
        case revalidate
    }

    /// Looks the command up, checks its arity and who may run it, and runs it if it can be
    /// answered at once. Never waits: the connection handler calls it on the event loop.
    func begin(_ request: [ByteBuffer], session: inout Session) -> Step {
        let rawName = request[0].readableBytesView
        // Command names are ASCII: no Unicode case mapping on every request. Written in
        // place, a name of up to 15 bytes stays a small string, with no allocation.
        let name = String(unsafeUninitializedCapacity: rawName.count) { buffer in
            for (index, byte) in rawName.enumerated() { buffer[index] = (0x61...0x7A).contains(byte) ? byte - 0x20 : byte }
            return rawName.count
        }
        let command = commands[name]
        let invocation = Invocation(name: name, arguments: Arguments(request: request), started: .now, metrics: metrics[name])
        let arguments = invocation.arguments
        guard let command else {
            // Never the arguments (Redis echoes them): a mistyped AUTH would send its
            // password back, and into whatever logs the client keeps. The name only when
            // it looks like one.
            let looksLikeName = (1...32).contains(rawName.count) && rawName.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "'") }
            return .done(finish(invocation, .error(code: "ERR", message: looksLikeName ? "unknown command '\(name)'" : "unknown command")))
        }
        // A login is used only while it is confirmed (see LiveSessions). Commands open
        // to anyone that answer on the spot (PING, CONFIG …) never depend on it.
        if let token = session.token {
            if command.access == .anyone, case .immediate = command.body {
            } else if session.loginJustConfirmed {
                session.loginJustConfirmed = false
            } else if let user = liveSessions.user(token) {
                session.user = user  // as confirmed: a new role shows at once
            } else {
                return .revalidate
            }
        }
        if session.isSubscribed, session.protocolVersion < 3, !Self.subscribeModeCommands.contains(name) {
            return .done(finish(invocation, .error(code: "ERR", message: "Can't execute '\(name.lowercased())': only (P)SUBSCRIBE / (P)UNSUBSCRIBE / PING / QUIT are allowed in this context")))
        }
        guard command.accepts(argumentCount: arguments.count) else {
            return .done(finish(invocation, reply(CommandError.wrongArity(name))))
        }
        switch command.access {
        case .anyone: break
        case .user: if session.user == nil { return .done(finish(invocation, reply(CommandError.noAuth))) }
        case .admin:
            guard let user = session.user else { return .done(finish(invocation, reply(CommandError.noAuth))) }
            if user.role != .admin { return .done(finish(invocation, reply(CommandError.noPerm))) }
        }
        switch command.body {
        case .immediate(let body):
            let reply: Reply
            do { reply = try body(self, &session, arguments) } catch { reply = self.reply(for: error, invocation) }
            return .done(finish(invocation, reply))
        case .lookup(let key):
            do { return .lookup(try key(arguments), invocation) } catch { return .done(finish(invocation, reply(for: error, invocation))) }
        case .deferred(let run):
            return .deferred(run, invocation)
        }
    }

    /// Confirms the session's login with the database. Logged out, revoked, expired or
    /// deactivated: the session is anonymous from now on, and the request that asked
    /// proceeds as such (`-NOAUTH` for a command that needs a user). Returns an error
    /// reply for that request when the database cannot say.
    func revalidate(_ session: inout Session) async -> Reply? {
        guard let token = session.token else { return nil }
        do {
            let active = try await stockroom.accounts.session(token: token)
            liveSessions.confirm(token, active)
            session.user = active.user
            session.loginJustConfirmed = true
            return nil
        } catch let error as StockroomError where error.code == .unauthenticated {
            liveSessions.forget(token: token)
            session.user = nil
            session.token = nil
            return nil
        } catch {
            let invocation = Invocation(name: "SESSION-CHECK", arguments: Arguments(request: [ByteBuffer()]), started: .now, metrics: nil)
            return finish(invocation, reply(for: error, invocation))
        }
    }

    func runDeferred(_ run: Command.Run, _ invocation: Invocation, session: inout Session) async -> Reply {
        let reply: Reply
        do { reply = try await run(self, &session, invocation.arguments) } catch { reply = self.reply(for: error, invocation) }
        // Whatever may have written (a failed command too: it may have committed before
        // its connection broke) fences this connection's reads from standbys.
        if replicas != nil, !Self.readOnlyCommands.contains(invocation.name) { session.lastWriteAt = .now }
        return finish(invocation, reply)
    }

    /// Deferred commands that never write: they leave a connection's reads where they were.
    static let readOnlyCommands: Set<String> = [
        "PRODUCT.LIST", "PRODUCT.SEARCH", "ORDER.GET", "ORDER.LIST", "EVENTS.READ", "WHOAMI", "USER.LIST",
        "WEBHOOK.LIST", "WEBHOOK.DELIVERIES",
    ]

    /// Where this connection's product reads go now: the standbys when there are some,
    /// they answer, and they have replayed its last write; otherwise the primary.
    func readsFromStandbys(_ session: Session) -> Bool {
        guard let replicas else { return false }
        let standby = replicas.standbysMayServe(lastWrite: session.lastWriteAt)
        (standby ? readCounters.standby : readCounters.primary).increment()
        return standby
    }

    /// A product read (PRODUCT.LIST, PRODUCT.SEARCH) for this connection: on the standbys
    /// when it may, and on the primary when they fail it — a standby away, or behind a
    /// migration that made a table, costs a retry, never an error.
    func readProducts<T>(_ session: Session, _ read: (ProductRepository) async throws -> T) async throws -> T {
        if let standbyProducts, readsFromStandbys(session) {
            do {
                return try await read(standbyProducts)
            } catch let error as StockroomError where error.code == .invalidInput || error.code == .notFound {
                throw error  // the request's own fault: the primary would say the same
            } catch {
                standbyFellBack()
            }
        }
        return try await read(stockroom.products)
    }

    /// Counts a standby read answered by the primary after all.
    func standbyFellBack() {
        readCounters.fellBack.increment()
    }

    /// The lookup's reply, written: a simple string whose text is the product's JSON,
    /// which goes straight into the buffer.
    func finishLookup(_ result: Result<Product?, any Error>, _ invocation: Invocation, session: Session, protocolVersion: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        do {
            let product = try visibleProduct(result.get(), session: session)
            var buffer = allocator.buffer(capacity: ProductJSON.maxLength(product) + 3)
            buffer.writeStaticString("+")
            ProductJSON.write(product, to: &buffer)
            buffer.writeStaticString("\r\n")
            count(invocation, outcome: "OK")
            return buffer
        } catch {
            var buffer = allocator.buffer(capacity: 64)
            finish(invocation, self.reply(for: error, invocation)).write(to: &buffer, protocolVersion: protocolVersion)
            return buffer
        }
    }

    /// Counts the command and its outcome.
    private func finish(_ invocation: Invocation, _ reply: Reply) -> Reply {
        if case .error(let code, _) = reply {
            stats.errorReplies.add(1, ordering: .relaxed)
            count(invocation, outcome: code)
        } else {
            count(invocation, outcome: "OK")
        }
        return reply
    }

    private func count(_ invocation: Invocation, outcome: String) {
        stats.commandsProcessed.add(1, ordering: .relaxed)
        let metrics = invocation.metrics ?? CommandMetrics(name: "unknown")
        metrics.counter(outcome).increment()
        metrics.duration.recordNanoseconds(Self.nanoseconds(.now - invocation.started))
    }

    /// Every failure becomes an error reply with a protocol code.
    private func reply(for error: any Error, _ invocation: Invocation) -> Reply {
        switch error {
        case let error as CommandError:
            return reply(error)
        case let error as StockroomError where error.code == .timeout || error.code == .inDoubt:
            // The database's trouble, not the client's: an operator looks for these in
            // the log, and the client quotes the id.
            let requestID = Self.requestID()
            logger.warning("database trouble", metadata: ["request.id": "\(requestID)", "command": "\(invocation.name)", "reply": "\(error.code.rawValue)", "error": "\(error.message)"])
            return .error(code: error.code.rawValue, message: "\(error.message) (request id \(requestID))")
        case let error as StockroomError:
            return reply(CommandError(error))
        case is CancellationError:
            return .error(code: "SHUTDOWN", message: "the server is shutting down")
        default:
            // Not a rule of the domain and not the database being away: a bug. The reply
            // carries an id to find the log line; the log carries the error's terse
            // description — never the arguments (they may hold passwords), nor a server
            // error's detail (it may quote bound values).
            let requestID = Self.requestID()
            logger.error("internal error", metadata: ["request.id": "\(requestID)", "command": "\(invocation.name)", "error": "\(error)"])
            return .error(code: "INTERNAL", message: "internal error (request id \(requestID))")
        }
    }

    /// Eight hex digits that tie an error reply to its log line.
    static func requestID() -> String {
        String(UInt32.random(in: .min ... .max), radix: 16).leftPadded(to: 8)
    }

    private func reply(_ error: CommandError) -> Reply {
        .error(code: error.code, message: error.message)
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }

    /// A JSON result.
    static func json(_ value: some Encodable) -> Reply {
        .simple(JSONPayload.encode(value))
    }

    /// An order, written by hand (see `OrderJSON`).
    static func json(_ order: Order) -> Reply {
        .simple(OrderJSON.encode(order))
    }

    /// `{"items":[…],"next":<id or null>}`: `next` is the last id when the page is full.
    static func page<T: Encodable>(_ items: [T], limit: Int, id: (T) -> Int64) -> Reply {
        return json(Page(items: items, next: items.count == limit ? items.last.map(id) : nil))
    }

    /// LIMIT n: 1 to 500, 50 when absent.
    static func limit(_ arguments: Arguments, _ options: [String: Int]) throws(CommandError) -> Int {
        guard let index = options["LIMIT"] else { return 50 }
        let limit = try arguments.integer(index, field: "limit")
        guard (1...500).contains(limit) else { throw .invalid("limit", "must be 1 to 500") }
        return limit
    }

    static func after(_ arguments: Arguments, _ options: [String: Int]) throws(CommandError) -> Int64 {
        guard let index = options["AFTER"] else { return 0 }
        let text = try arguments.string(index, field: "after")
        guard let value = Int64(text), value >= 0 else { throw .invalid("after", "must be an id (0 or more)") }
        return value
    }
}

/// A page of a list reply.
struct Page<Item: Encodable>: Encodable {
    let items: [Item]
    let next: Int64?

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(items, forKey: .items)
        try container.encode(next, forKey: .next)  // null, not absent
    }

    enum Keys: String, CodingKey { case items, next }
}

/// A command's metrics: how many ran, by outcome, and how long they took.
struct CommandMetrics: Sendable {
    let name: String
    let succeeded: Counter
    let duration: Metrics.Timer

    init(name: String) {
        self.name = name
        succeeded = Counter(label: "stockroom.commands", dimensions: [("command", name), ("outcome", "OK")])
        duration = Metrics.Timer(label: "stockroom.command.duration", dimensions: [("command", name)])
    }

    func counter(_ outcome: String) -> Counter {
        outcome == "OK" ? succeeded : Counter(label: "stockroom.commands", dimensions: [("command", name), ("outcome", outcome)])
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
