import Stockroom
import StockroomDelivery

/// WEBHOOK.*: admins register endpoints that receive events as signed HTTP requests
/// (docs/EVENTS.md#webhooks), look at what was delivered, and replay events. The
/// delivery itself is `WebhookWorker`'s, here or in `stockroom worker`.
extension CommandDispatcher {
    static let webhookCommands: [Command] = [
        Command(name: "WEBHOOK.CREATE", arity: 2, access: .admin) { dispatcher, _, arguments in
            let payload = try arguments.json(0)
            let url = try payload["url"].string()
            let events = try payload["events"].elements().map { try $0.string() }
            let description = try payload["description"].optionalString() ?? ""
            let (endpoint, secret) = try await dispatcher.webhooks.create(url: url, events: events, description: description)
            // The one reply that carries the secret: it is stored for signing and never shown again.
            return json(CreatedWebhook(endpoint: endpoint, secret: secret))
        },
        Command(name: "WEBHOOK.LIST", arity: 1, access: .admin) { dispatcher, _, _ in
            struct Endpoints: Encodable { let items: [WebhookEndpoint] }
            return json(Endpoints(items: try await dispatcher.webhooks.list()))
        },
        Command(name: "WEBHOOK.DELETE", arity: 2, access: .admin) { dispatcher, _, arguments in
            try await dispatcher.webhooks.delete(id: try arguments.id(0))
            return .simple("OK")
        },
        Command(name: "WEBHOOK.DELIVERIES", arity: -2, access: .admin) { dispatcher, _, arguments in
            let id = try arguments.id(0)
            let options = try arguments.options(from: 1, allowed: ["AFTER", "LIMIT"])
            let limit = try limit(arguments, options)
            let deliveries = try await dispatcher.webhooks.deliveries(endpoint: id, after: try after(arguments, options), limit: limit)
            return page(deliveries, limit: limit, id: \.id)
        },
        Command(name: "WEBHOOK.REPLAY", arity: 2, access: .admin) { dispatcher, _, arguments in
            let eventID = try arguments.id(0, field: "event_id")
            // Number what has committed, sharing the feed's run as EVENTS.READ does.
            await dispatcher.feed.numbered()
            struct Replayed: Encodable { let eventId: Int64; let endpoints: [Int64] }
            return json(Replayed(eventId: eventID, endpoints: try await dispatcher.webhooks.replay(eventID: eventID)))
        },
    ]
}

/// WEBHOOK.CREATE's reply: the endpoint and, this once, its secret.
private struct CreatedWebhook: Encodable {
    let endpoint: WebhookEndpoint
    let secret: String

    func encode(to encoder: any Encoder) throws {
        try endpoint.encode(to: encoder)
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(secret, forKey: .secret)
    }

    enum Keys: String, CodingKey { case secret }
}
