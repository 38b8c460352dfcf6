import Stockroom

extension CommandDispatcher {
    static let accountCommands: [Command] = [
        Command(name: "USER.REGISTER", arity: 2, access: .anyone) { dispatcher, _, arguments in
            struct Payload: Decodable { let email: String; let name: String; let password: String }
            let payload = try arguments.json(0, as: Payload.self)
            return json(try await dispatcher.stockroom.accounts.register(email: payload.email, name: payload.name, password: payload.password))
        },
        Command(name: "SESSION.LOGIN", arity: 2, access: .anyone) { dispatcher, session, arguments in
            struct Payload: Decodable { let email: String; let password: String }
            let payload = try arguments.json(0, as: Payload.self)
            return json(try await dispatcher.login(&session, email: payload.email, password: payload.password))
        },
        Command(name: "SESSION.LOGOUT", arity: 1, access: .user) { dispatcher, session, _ in
            if let token = session.token { try await dispatcher.stockroom.accounts.logout(token: token) }
            session.user = nil
            session.token = nil
            return .ok
        },
        Command(name: "WHOAMI", arity: 1, access: .user) { _, session, _ in
            json(session.user!)
        },
        Command(name: "USER.GET", arity: 2, access: .user) { dispatcher, session, arguments in
            let id = try arguments.id(0)
            let principal = session.principal!
            // A customer asking for someone else learns nothing, not even that they exist.
            guard principal.isAdmin || principal.userID == id else { throw CommandError.notFound("user \(id)") }
            return json(try await dispatcher.stockroom.accounts.user(id: id, as: principal))
        },
        Command(name: "USER.LIST", arity: -1, access: .admin) { dispatcher, session, arguments in
            let options = try arguments.options(from: 0, allowed: ["AFTER", "LIMIT"])
            let limit = try limit(arguments, options)
            let users = try await dispatcher.stockroom.accounts.users(after: try after(arguments, options), limit: limit, as: session.principal!)
            return page(users, limit: limit, id: \.id)
        },
    ]
}
