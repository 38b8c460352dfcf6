import Stockroom

extension CommandDispatcher {
    static let orderCommands: [Command] = [
        Command(name: "ORDER.PLACE", arity: 2, access: .user) { dispatcher, session, arguments in
            // The hottest payload: its keys are spelled out (see JSONPayload.decode).
            struct Payload: Decodable {
                struct Line: Decodable {
                    let productID: Int64
                    let quantity: Int
                    enum CodingKeys: String, CodingKey { case productID = "product_id", quantity }
                }
                let lines: [Line]
                let idempotencyKey: String?
                let userId: Int64?
                enum CodingKeys: String, CodingKey { case lines, idempotencyKey = "idempotency_key", userId = "user_id" }
            }
            let payload = try arguments.json(0, as: Payload.self, keysAsDeclared: true)
            let principal = session.principal!
            if let userID = payload.userId, userID != principal.userID, !principal.isAdmin {
                throw CommandError.invalid("user_id", "only admins may place orders for other users")
            }
            let request = OrderRequest(lines: payload.lines.map { OrderRequest.Line(productID: $0.productID, quantity: $0.quantity) }, idempotencyKey: payload.idempotencyKey)
            return json(try await dispatcher.stockroom.orders.place(request, for: payload.userId, as: principal))
        },
        Command(name: "ORDER.GET", arity: 2, access: .user) { dispatcher, session, arguments in
            json(try await dispatcher.stockroom.orders.order(id: try arguments.id(0), as: session.principal!))
        },
        Command(name: "ORDER.LIST", arity: -1, access: .user) { dispatcher, session, arguments in
            let options = try arguments.options(from: 0, allowed: ["USER", "STATUS", "AFTER", "LIMIT"])
            let principal = session.principal!
            let userID = try options["USER"].map { index throws(CommandError) in try arguments.id(index, field: "user") }
            if let userID, userID != principal.userID, !principal.isAdmin { throw CommandError.notFound("user \(userID)") }
            var status: OrderStatus?
            if let index = options["STATUS"] {
                let text = try arguments.string(index, field: "status").lowercased()
                guard let parsed = OrderStatus(rawValue: text) else {
                    throw CommandError.invalid("status", "must be one of \(OrderStatus.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                status = parsed
            }
            let limit = try limit(arguments, options)
            let orders = try await dispatcher.stockroom.orders.list(userID: userID, status: status, after: try after(arguments, options), limit: limit, as: principal)
            return page(orders, limit: limit, id: \.id)
        },
        Command(name: "ORDER.PAY", arity: 2, access: .user) { dispatcher, session, arguments in
            json(try await dispatcher.stockroom.orders.pay(id: try arguments.id(0), as: session.principal!))
        },
        Command(name: "ORDER.CANCEL", arity: 2, access: .user) { dispatcher, session, arguments in
            json(try await dispatcher.stockroom.orders.cancel(id: try arguments.id(0), as: session.principal!))
        },
        Command(name: "ORDER.SHIP", arity: 2, access: .admin) { dispatcher, session, arguments in
            json(try await dispatcher.stockroom.orders.ship(id: try arguments.id(0), as: session.principal!))
        },
        Command(name: "ORDER.DELIVER", arity: 2, access: .admin) { dispatcher, session, arguments in
            json(try await dispatcher.stockroom.orders.deliver(id: try arguments.id(0), as: session.principal!))
        },
    ]
}
