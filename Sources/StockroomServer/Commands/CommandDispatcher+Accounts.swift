import Stockroom

extension CommandDispatcher {
    static let accountCommands: [Command] = [
        Command(name: "USER.REGISTER", arity: 2, access: .anyone) { dispatcher, session, arguments in
            let payload = try arguments.json(0)
            let email = try payload["email"].string(), name = try payload["name"].string(), password = try payload["password"].string()
            guard dispatcher.throttle.mayRegister(address: session.address) else {
                throw CommandError("UNAVAILABLE", "too many registrations from this address; try again later")
            }
            return json(try await dispatcher.stockroom.accounts.register(email: email, name: name, password: password))
        },
        Command(name: "SESSION.LOGIN", arity: 2, access: .anyone) { dispatcher, session, arguments in
            let payload = try arguments.json(0)
            let email = try payload["email"].string(), password = try payload["password"].string()
            return json(try await dispatcher.login(&session, email: email, password: password))
        },
        Command(name: "SESSION.LOGOUT", arity: 1, access: .user) { dispatcher, session, _ in
            if let token = session.token {
                try await dispatcher.stockroom.accounts.logout(token: token)
                // Every connection of this server holding the token loses it at its next
                // command; those of other instances within the check interval.
                dispatcher.liveSessions.forget(token: token)
            }
            session.user = nil
            session.token = nil
            return .ok
        },
        Command(name: "SESSION.REVOKEALL", arity: -1, access: .user) { dispatcher, session, arguments in
            let principal = session.principal!
            guard arguments.count <= 1 else { throw CommandError.wrongArity("SESSION.REVOKEALL") }
            let userID = arguments.count == 1 ? try arguments.id(0, field: "user") : principal.userID
            if userID != principal.userID, !principal.isAdmin { throw CommandError.notFound("user \(userID)") }
            let revoked = try await dispatcher.stockroom.accounts.revokeAllSessions(userID: userID)
            dispatcher.liveSessions.forget(userID: userID)
            if userID == principal.userID {
                session.user = nil
                session.token = nil
            }
            return .integer(revoked)
        },
        Command(name: "USER.SETROLE", arity: 3, access: .admin) { dispatcher, session, arguments in
            let id = try arguments.id(0)
            guard let role = Role(rawValue: try arguments.string(1, field: "role").lowercased()) else {
                throw CommandError.invalid("role", "must be customer or admin")
            }
            let user = try await dispatcher.stockroom.accounts.setRole(userID: id, to: role, as: session.principal!)
            dispatcher.liveSessions.forget(userID: id)
            return json(user)
        },
        Command(name: "USER.DEACTIVATE", arity: 2, access: .admin) { dispatcher, session, arguments in
            let id = try arguments.id(0)
            try await dispatcher.stockroom.accounts.deactivate(userID: id, as: session.principal!)
            dispatcher.liveSessions.forget(userID: id)
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
