import Foundation
import Logging
import Metrics
import NIOCore
import Stockroom

/// Runs one request for one session: looks the command up, checks its arity and who may
/// run it, runs it, and turns every failure into an error reply with a protocol code.
final class CommandDispatcher: Sendable {
    let stockroom: Stockroom
    let configuration: ServerConfiguration
    let stats: ServerStats
    let throttle = LoginThrottle()
    let lookups: ProductLookupBatcher
    let logger: Logger
    let version: String
    let commands: [String: Command]

    init(stockroom: Stockroom, configuration: ServerConfiguration, stats: ServerStats, version: String, logger: Logger) {
        self.stockroom = stockroom
        self.configuration = configuration
        self.stats = stats
        self.version = version
        self.logger = logger
        // Half the pool at most for batched lookups, so writes always find a connection.
        let inFlight = min(configuration.maxLookupStatementsInFlight, (stockroom.pool.configuration.maxConnections + 1) / 2)
        self.lookups = ProductLookupBatcher(products: stockroom.products, maxInFlight: inFlight)
        var table: [String: Command] = [:]
        for command in Self.connectionCommands + Self.accountCommands + Self.productCommands + Self.orderCommands {
            table[command.name] = command
        }
        self.commands = table
    }

    func execute(_ request: [ByteBuffer], session: inout Session) async -> Reply {
        let rawName = String(decoding: request[0].readableBytesView, as: UTF8.self)
        let name = rawName.uppercased()
        let clock = ContinuousClock()
        let start = clock.now
        let reply = await run(name: name, rawName: rawName, arguments: Arguments(values: Array(request.dropFirst())), session: &session)
        stats.commandsProcessed.add(1, ordering: .relaxed)
        let outcome: String
        if case .error(let code, _) = reply {
            outcome = code
            stats.errorReplies.add(1, ordering: .relaxed)
        } else {
            outcome = "OK"
        }
        let label = commands[name] == nil ? "unknown" : name.lowercased()
        Counter(label: "stockroom.commands", dimensions: [("command", label), ("outcome", outcome)]).increment()
        Metrics.Timer(label: "stockroom.command.duration", dimensions: [("command", label)]).recordNanoseconds(Self.nanoseconds(clock.now - start))
        return reply
    }

    private func run(name: String, rawName: String, arguments: Arguments, session: inout Session) async -> Reply {
        guard let command = commands[name] else {
            let shown = arguments.values.prefix(8).map { "'\(String(decoding: $0.readableBytesView.prefix(64), as: UTF8.self))'" }.joined(separator: " ")
            return .error(code: "ERR", message: "unknown command '\(String(rawName.prefix(128)))', with args beginning with: \(shown)")
        }
        guard command.accepts(argumentCount: arguments.count) else {
            return reply(CommandError.wrongArity(name))
        }
        switch command.access {
        case .anyone: break
        case .user: if session.user == nil { return reply(CommandError.noAuth) }
        case .admin:
            guard let user = session.user else { return reply(CommandError.noAuth) }
            if user.role != .admin { return reply(CommandError.noPerm) }
        }
        do {
            return try await command.run(self, &session, arguments)
        } catch let error as CommandError {
            return reply(error)
        } catch let error as StockroomError {
            return reply(CommandError(error))
        } catch is CancellationError {
            return .error(code: "SHUTDOWN", message: "the server is shutting down")
        } catch {
            // Not a rule of the domain and not the database being away: a bug. The reply
            // carries an id to find the log line; the log carries the error's terse
            // description — never the arguments (they may hold passwords), nor a server
            // error's detail (it may quote bound values).
            let requestID = String(UUID().uuidString.prefix(8)).lowercased()
            logger.error("internal error", metadata: ["request.id": "\(requestID)", "command": "\(name)", "error": "\(error)"])
            return .error(code: "INTERNAL", message: "internal error (request id \(requestID))")
        }
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
