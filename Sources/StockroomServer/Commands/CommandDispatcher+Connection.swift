import Foundation
import Stockroom

/// PING, ECHO, QUIT, HELLO, AUTH, CLIENT, SELECT, COMMAND, CONFIG, INFO: what Redis
/// clients send on their own, answered the way they expect.
extension CommandDispatcher {
    static let connectionCommands: [Command] = [
        Command(name: "PING", arity: -1, access: .anyone, immediate: { _, session, arguments in
            guard arguments.count <= 1 else { throw CommandError.wrongArity("PING") }
            // Subscribed over RESP2, Redis answers with a message-like array.
            if session.isSubscribed && session.protocolVersion < 3 {
                return .array([.bulk("pong"), .bulk(arguments.count == 1 ? arguments.bytes(0) : [])])
            }
            return arguments.count == 1 ? .bulk(arguments.bytes(0)) : .simple("PONG")
        }),
        Command(name: "ECHO", arity: 2, access: .anyone, immediate: { _, _, arguments in
            .bulk(arguments.bytes(0))
        }),
        Command(name: "QUIT", arity: -1, access: .anyone, immediate: { _, session, _ in
            session.closeAfterReply = true
            return .ok
        }),
        Command(name: "SELECT", arity: 2, access: .anyone, immediate: { _, _, arguments in
            guard try arguments.string(0, field: "index") == "0" else { throw CommandError("ERR", "DB index is out of range") }
            return .ok
        }),
        Command(name: "HELLO", arity: -1, access: .anyone) { dispatcher, session, arguments in
            try await dispatcher.hello(&session, arguments)
        },
        Command(name: "AUTH", arity: -2, access: .anyone) { dispatcher, session, arguments in
            switch arguments.count {
            case 1: try await dispatcher.resume(&session, token: try arguments.string(0, field: "token"))
            case 2: try await dispatcher.login(&session, email: try arguments.string(0, field: "email"), password: try arguments.string(1, field: "password"))
            default: throw CommandError.wrongArity("AUTH")
            }
            return .ok
        },
        Command(name: "CLIENT", arity: -2, access: .anyone, immediate: { dispatcher, session, arguments in
            try dispatcher.client(&session, arguments)
        }),
        Command(name: "COMMAND", arity: -1, access: .anyone, immediate: { dispatcher, session, arguments in
            try dispatcher.command(arguments)
        }),
        Command(name: "CONFIG", arity: -2, access: .anyone, immediate: { dispatcher, session, arguments in
            guard try arguments.string(0, field: "subcommand").uppercased() == "GET", arguments.count >= 2 else {
                throw CommandError.syntax("only CONFIG GET <pattern> is supported")
            }
            // Each key once, in the table's order, whichever patterns match it.
            let values = dispatcher.configValues
            var matched = [Bool](repeating: false, count: values.count)
            for index in 1..<arguments.count {
                let glob = Glob(arguments[index].readableBytesView)
                for (n, (key, _)) in values.enumerated() where !matched[n] && glob.matches(key.utf8) {
                    matched[n] = true
                }
            }
            let pairs: [(Reply, Reply)] = zip(values, matched).compactMap { $1 ? (.bulk($0.0), .bulk($0.1)) : nil }
            return session.protocolVersion >= 3 ? .map(pairs) : .array(pairs.flatMap { [$0.0, $0.1] })
        }),
        Command(name: "INFO", arity: -1, access: .anyone) { dispatcher, session, arguments in
            .bulk(try await dispatcher.info(sections: (0..<arguments.count).map { try arguments.string($0, field: "section").lowercased() }))
        },
    ]

    // MARK: - Logging in

    /// Email and password: a new session, as SESSION.LOGIN makes.
    @discardableResult
    func login(_ session: inout Session, email: String, password: String) async throws -> LoginResult {
        // Every instance's failures for this email, counted in the database, so that
        // guesses spread over instances are slowed as if they all came to one. When the
        // database cannot say, this instance's count alone (the login itself will then
        // most likely fail for the same reason).
        let shared = email.utf8.count <= 1024
            ? ((try? await stockroom.accounts.countLoginAttempt(email: email, forgetAfter: throttle.limits.forgetAfter)) ?? 0) : 0
        switch throttle.attempt(email: email, address: session.address, sharedFailures: shared) {
        case .refused:
            try failedLogin(&session)
            throw CommandError("WRONGPASS", "too many failed logins from this address; try again later")
        case .proceed(let delay):
            if delay > .zero { try await Task.sleep(for: delay) }
        }
        do {
            let result = try await stockroom.accounts.login(email: email, password: password)
            throttle.succeeded(email: email, address: session.address)
            try? await stockroom.accounts.clearLoginFailures(email: email)
            session.user = result.user
            session.token = result.token
            session.failedLogins = 0
            liveSessions.confirm(result.token, ActiveSession(user: result.user, expiresAt: result.expiresAt))
            return result
        } catch let error as StockroomError where error.code == .unauthenticated || error.code == .invalidInput {
            try failedLogin(&session)
            throw error
        }
    }

    /// A session token from an earlier login.
    func resume(_ session: inout Session, token: String) async throws {
        do {
            let active = try await stockroom.accounts.session(token: token)
            liveSessions.confirm(token, active)
            session.user = active.user
            session.token = token
            session.failedLogins = 0
        } catch let error as StockroomError where error.code == .unauthenticated || error.code == .invalidInput {
            try failedLogin(&session)
            throw CommandError("WRONGPASS", "invalid or expired session token")
        }
    }

    private func failedLogin(_ session: inout Session) throws {
        session.failedLogins += 1
        if session.failedLogins >= configuration.maxFailedLogins {
            session.closeAfterReply = true
            throw CommandError("WRONGPASS", "wrong email or password; too many failed logins, closing the connection")
        }
    }

    // MARK: - HELLO, CLIENT, COMMAND, INFO

    func hello(_ session: inout Session, _ arguments: Arguments) async throws -> Reply {
        var version = session.protocolVersion
        var index = 0
        if arguments.count > 0 {
            guard let requested = Int(try arguments.string(0, field: "protover")) else {
                throw CommandError("ERR", "Protocol version is not an integer or out of range")
            }
            guard requested == 2 || requested == 3 else {
                throw CommandError("NOPROTO", "unsupported protocol version")
            }
            version = requested
            index = 1
        }
        var name: String?
        var credentials: (String, String)?
        while index < arguments.count {
            let option = try arguments.string(index, field: "option").uppercased()
            if option == "AUTH", index + 2 < arguments.count {
                credentials = (try arguments.string(index + 1, field: "username"), try arguments.string(index + 2, field: "password"))
                index += 3
            } else if option == "SETNAME", index + 1 < arguments.count {
                name = try Self.clientName(arguments, index + 1)
                index += 2
            } else {
                throw CommandError.syntax("Syntax error in HELLO option '\(option)'")
            }
        }
        if let (email, password) = credentials { try await login(&session, email: email, password: password) }
        if let name { session.name = name }
        session.protocolVersion = version
        let pairs: [(Reply, Reply)] = [
            (.bulk("server"), .bulk("stockroom")),
            (.bulk("version"), .bulk(self.version)),
            (.bulk("proto"), .integer(version)),
            (.bulk("id"), .integer(session.id)),
            (.bulk("mode"), .bulk("standalone")),
            (.bulk("role"), .bulk("master")),
            (.bulk("modules"), .array([])),
            (.bulk("limits"), .map([
                (.bulk("max_clients"), .integer(configuration.maxClients)),
                (.bulk("max_inline_bytes"), .integer(configuration.limits.maxInlineLength)),
                (.bulk("max_arguments"), .integer(configuration.limits.maxArguments)),
                (.bulk("max_argument_bytes"), .integer(configuration.limits.maxArgumentLength)),
                (.bulk("max_request_bytes"), .integer(configuration.limits.maxRequestLength)),
                (.bulk("max_list_limit"), .integer(500)),
            ])),
        ]
        return .map(pairs)
    }

    static func clientName(_ arguments: Arguments, _ index: Int) throws(CommandError) -> String {
        let name = try arguments.string(index, field: "name")
        guard name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }), name.count <= 128 else {
            throw CommandError("ERR", "Client names cannot contain spaces, newlines or special characters.")
        }
        return name
    }

    func client(_ session: inout Session, _ arguments: Arguments) throws -> Reply {
        switch try arguments.string(0, field: "subcommand").uppercased() {
        case "ID":
            return .integer(session.id)
        case "GETNAME":
            return session.name.map { .bulk($0) } ?? .null
        case "SETNAME":
            guard arguments.count == 2 else { throw CommandError.wrongArity("CLIENT|SETNAME") }
            let name = try Self.clientName(arguments, 1)
            session.name = name.isEmpty ? nil : name
            return .ok
        case "SETINFO":
            guard arguments.count == 3 else { throw CommandError.wrongArity("CLIENT|SETINFO") }
            return .ok
        default:
            throw CommandError.syntax("unknown subcommand for CLIENT: use ID, GETNAME, SETNAME or SETINFO")
        }
    }

    func command(_ arguments: Arguments) throws -> Reply {
        guard arguments.count > 0 else {
            return .array(commands.values.sorted { $0.name < $1.name }.map { command in
                .array([.bulk(command.name.lowercased()), .integer(command.arity), .array([]), .integer(0), .integer(0), .integer(0)])
            })
        }
        switch try arguments.string(0, field: "subcommand").uppercased() {
        case "COUNT": return .integer(commands.count)
        case "DOCS": return .array([])  // clients use docs only for hints
        default: throw CommandError.syntax("unknown subcommand for COMMAND: use COUNT or DOCS")
        }
    }

    var configValues: [(String, String)] {
        [
            ("maxclients", "\(configuration.maxClients)"),
            ("timeout", "\(configuration.idleTimeout.components.seconds)"),
            ("proto-max-bulk-len", "\(configuration.limits.maxArgumentLength)"),
            // Redis's name for what bounds one client's input; here, one request's bytes.
            ("client-query-buffer-limit", "\(configuration.limits.maxRequestLength)"),
            // redis-benchmark reads these two at start and warns when it cannot.
            ("save", ""),
            ("appendonly", "no"),
        ]
    }

    func info(sections: [String]) async throws -> String {
        let wanted = Set(sections.isEmpty || sections.contains("all") || sections.contains("everything") || sections.contains("default") ? ["server", "clients", "stats", "database"] : sections)
        let uptime = (ContinuousClock.now - stats.startedAt).components.seconds
        var text = ""
        if wanted.contains("server") {
            text += "# Server\r\nstockroom_version:\(version)\r\nredis_mode:standalone\r\nprocess_id:\(ProcessInfo.processInfo.processIdentifier)\r\ntcp_port:\(configuration.port)\r\ntls:\(configuration.tls == nil ? "no" : "yes")\r\nuptime_in_seconds:\(uptime)\r\n\r\n"
        }
        if wanted.contains("clients") {
            text += "# Clients\r\nconnected_clients:\(stats.connectedClients.load(ordering: .relaxed))\r\nmaxclients:\(configuration.maxClients)\r\n\r\n"
        }
        if wanted.contains("stats") {
            text += "# Stats\r\ntotal_connections_received:\(stats.connectionsReceived.load(ordering: .relaxed))\r\ntotal_commands_processed:\(stats.commandsProcessed.load(ordering: .relaxed))\r\nrejected_connections:\(stats.rejectedConnections.load(ordering: .relaxed))\r\ntotal_error_replies:\(stats.errorReplies.load(ordering: .relaxed))\r\nproduct_lookups:\(lookups.lookups.load(ordering: .relaxed))\r\nproduct_lookup_statements:\(lookups.batches.load(ordering: .relaxed))\r\nproduct_lookups_waiting:\(lookups.waiting)\r\nproduct_lookup_workers:\(lookups.workers)\r\n"
            if let admission = stockroom.orders.admission {
                let (inside, waiting) = admission.statistics
                text += "order_transactions_running:\(inside)\r\norder_transactions_waiting:\(waiting)\r\norder_transactions_limit:\(admission.limit)\r\n"
            }
            text += "\r\n"
        }
        if wanted.contains("database") {
            let pool = stockroom.pool.statistics
            text += "# Database\r\npool_open_connections:\(pool.open)\r\npool_leased_connections:\(pool.leased)\r\npool_max_connections:\(stockroom.pool.configuration.maxConnections)\r\n\r\n"
        }
        return text
    }
}
