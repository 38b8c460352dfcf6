import Stockroom

/// EVENTS.READ, and Redis's pub/sub: SUBSCRIBE to event types, PSUBSCRIBE to patterns
/// (`order.*`). The commands only change the session; the connection handler joins the
/// feed (`EventFeed`) while the session has a subscription, and decides, as each event
/// arrives, whether this session may see it.
extension CommandDispatcher {
    /// Per connection, so that one client cannot make every event cost a thousand matches.
    static let maxSubscriptions = 64
    /// An event type is `area.name`; a pattern a little more.
    static let maxChannelLength = 128

    /// What a RESP2 connection in subscribe mode may still send (as in Redis).
    static let subscribeModeCommands: Set<String> = ["SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "PING", "QUIT"]

    static let eventCommands: [Command] = [
        Command(name: "EVENTS.READ", arity: -1, access: .user) { dispatcher, session, arguments in
            let options = try arguments.options(from: 0, allowed: ["AFTER", "LIMIT"])
            let limit = try limit(arguments, options)
            // Number what committed up to now first: a client reads its own changes.
            await dispatcher.feed.numbered()
            let events = try await dispatcher.stockroom.events.read(after: try after(arguments, options), limit: limit, as: session.principal!)
            let next = events.count == limit ? events.last.map { String($0.id) } ?? "null" : "null"
            return .simple("{\"items\":[" + events.map(EventJSON.encode).joined(separator: ",") + "],\"next\":\(next)}")
        },
        Command(name: "SUBSCRIBE", arity: -2, access: .user, immediate: { _, session, arguments in
            try subscribe(arguments, kind: "subscribe", to: \.channels, in: &session)
        }),
        Command(name: "PSUBSCRIBE", arity: -2, access: .user, immediate: { _, session, arguments in
            try subscribe(arguments, kind: "psubscribe", to: \.patterns, in: &session)
        }),
        Command(name: "UNSUBSCRIBE", arity: -1, access: .user, immediate: { _, session, arguments in
            unsubscribe(arguments, kind: "unsubscribe", from: \.channels, in: &session)
        }),
        Command(name: "PUNSUBSCRIBE", arity: -1, access: .user, immediate: { _, session, arguments in
            unsubscribe(arguments, kind: "punsubscribe", from: \.patterns, in: &session)
        }),
    ]

    /// One confirmation per name, with the count of subscriptions after it.
    private static func subscribe(_ arguments: Arguments, kind: String, to set: WritableKeyPath<Session, Set<String>>, in session: inout Session) throws(CommandError) -> Reply {
        var names: [String] = []
        for index in 0..<arguments.count {
            let name = try arguments.string(index, field: "channel")
            guard (1...maxChannelLength).contains(name.utf8.count), name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw .invalid("channel", "must be 1 to \(maxChannelLength) printable ASCII characters")
            }
            names.append(name)
        }
        let total = session.channels.count + session.patterns.count
        guard total + Set(names).subtracting(session[keyPath: set]).count <= maxSubscriptions else {
            throw CommandError("ERR", "at most \(maxSubscriptions) subscriptions per connection")
        }
        var confirmations: [Reply] = []
        for name in names {
            session[keyPath: set].insert(name)
            confirmations.append(.push([.bulk(kind), .bulk(name), .integer(session.channels.count + session.patterns.count)]))
        }
        return .sequence(confirmations)
    }

    /// Without names, every subscription of the kind; with none left, one confirmation
    /// with a null name (Redis's reply).
    private static func unsubscribe(_ arguments: Arguments, kind: String, from set: WritableKeyPath<Session, Set<String>>, in session: inout Session) -> Reply {
        let names = arguments.count == 0
            ? session[keyPath: set].sorted()
            : (0..<arguments.count).map { String(decoding: arguments.bytes($0), as: UTF8.self) }
        guard !names.isEmpty else { return .sequence([.push([.bulk(kind), .null, .integer(session.channels.count + session.patterns.count)])]) }
        var confirmations: [Reply] = []
        for name in names {
            session[keyPath: set].remove(name)
            confirmations.append(.push([.bulk(kind), .bulk(name), .integer(session.channels.count + session.patterns.count)]))
        }
        return .sequence(confirmations)
    }
}
