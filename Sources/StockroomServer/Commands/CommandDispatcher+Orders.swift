import Stockroom

extension CommandDispatcher {
    /// `reply`, once the feed has been asked to number the events its change wrote.
    func announcing(_ reply: Reply) -> Reply {
        feed.poke()
        return reply
    }

    static let orderCommands: [Command] = [
        Command(name: "ORDER.PLACE", arity: 2, access: .user) { dispatcher, session, arguments in
            // The hottest payload, read field by field: JSONDecoder cost a twelfth of the
            // service's CPU per order.
            let payload = try arguments.json(0)
            let lines = try payload["lines"].elements().map { line throws(CommandError) in
                OrderRequest.Line(productID: try line["product_id"].integer(), quantity: Int(try line["quantity"].integer()))
            }
            let key = try payload["idempotency_key"]
            let idempotencyKey = key.isMissing ? nil : try key.string()
            let user = try payload["user_id"]
            let userID = user.isMissing ? nil : try user.integer()
            let principal = session.principal!
            if let userID, userID != principal.userID, !principal.isAdmin {
                throw CommandError.invalid("user_id", "only admins may place orders for other users")
            }
            let request = OrderRequest(lines: lines, idempotencyKey: idempotencyKey)
            return dispatcher.announcing(json(try await dispatcher.stockroom.orders.place(request, for: userID, as: principal)))
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
        // Manual payments (cash, transfer): admins. Customers pay with ORDER.CHECKOUT.
        Command(name: "ORDER.PAY", arity: 2, access: .admin) { dispatcher, session, arguments in
            dispatcher.announcing(json(try await dispatcher.stockroom.orders.pay(id: try arguments.id(0), as: session.principal!)))
        },
        // A payment with the processor for the caller's pending order: its PaymentIntent
        // and the client secret that confirms it. The order becomes paid when the
        // processor's webhook says the money arrived (docs/EVENTS.md#payments).
        Command(name: "ORDER.CHECKOUT", arity: 2, access: .user) { dispatcher, session, arguments in
            let id = try arguments.id(0)
            guard let checkout = dispatcher.checkout else { throw CommandError("ERR", "payments are not configured on this server (serve --payments-url)") }
            let result = try await checkout.checkout(orderID: id, as: session.principal!)
            return json(CheckoutReply(orderId: result.orderID, paymentIntent: result.intentID, clientSecret: result.clientSecret, amountCents: result.amountCents, currency: result.currency))
        },
        // Where the processor's payment stands: after a cancel, whether the refund went
        // through. Own orders; any for admins.
        Command(name: "ORDER.PAYMENT", arity: 2, access: .user) { dispatcher, session, arguments in
            let id = try arguments.id(0)
            guard let payment = try await dispatcher.stockroom.payments.payment(orderID: id, as: session.principal!) else {
                throw CommandError.notFound("a payment through the processor for order \(id)")
            }
            return json(PaymentReply(orderId: payment.orderID, status: payment.status.rawValue, amountCents: payment.amountCents,
                                     currency: payment.currency, paymentIntent: payment.intentID, refundId: payment.refundID))
        },
        Command(name: "ORDER.CANCEL", arity: 2, access: .user) { dispatcher, session, arguments in
            dispatcher.announcing(json(try await dispatcher.stockroom.orders.cancel(id: try arguments.id(0), as: session.principal!)))
        },
        Command(name: "ORDER.SHIP", arity: 2, access: .admin) { dispatcher, session, arguments in
            dispatcher.announcing(json(try await dispatcher.stockroom.orders.ship(id: try arguments.id(0), as: session.principal!)))
        },
        Command(name: "ORDER.DELIVER", arity: 2, access: .admin) { dispatcher, session, arguments in
            dispatcher.announcing(json(try await dispatcher.stockroom.orders.deliver(id: try arguments.id(0), as: session.principal!)))
        },
    ]
}

/// ORDER.CHECKOUT's reply.
struct CheckoutReply: Encodable {
    var orderId: Int64
    var paymentIntent: String
    var clientSecret: String
    var amountCents: Int64
    var currency: String
}

/// ORDER.PAYMENT's reply: no client secret, which only ORDER.CHECKOUT hands out.
struct PaymentReply: Encodable {
    var orderId: Int64
    var status: String
    var amountCents: Int64
    var currency: String
    var paymentIntent: String?
    var refundId: String?

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(orderId, forKey: .orderId)
        try container.encode(status, forKey: .status)
        try container.encode(amountCents, forKey: .amountCents)
        try container.encode(currency, forKey: .currency)
        try container.encode(paymentIntent, forKey: .paymentIntent)  // null, not absent
        try container.encode(refundId, forKey: .refundId)
    }

    enum CodingKeys: String, CodingKey { case orderId, status, amountCents, currency, paymentIntent, refundId }
}
