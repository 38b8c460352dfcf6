import Foundation
import Logging
import Stockroom
import StockroomDelivery
import StockroomServer
import Testing

/// Signed webhooks end to end: WEBHOOK.* over the protocol, delivery workers in the
/// service and beside it, and a receiver in the test process that checks signatures.
@Suite("Webhooks: signed delivery, retries, disabling, workers, commands")
struct WebhookTests {
    /// Retries in milliseconds, so a delivery dies within a second.
    static func fastDelivery() -> WebhookWorker.Configuration {
        var configuration = WebhookWorker.Configuration()
        configuration.retrySchedule = RetrySchedule(delays: [.milliseconds(50), .milliseconds(100)], jitter: 0)
        configuration.lease = .seconds(5)
        configuration.requestTimeout = .seconds(5)
        configuration.disableAfterDeadDeliveries = 2
        return configuration
    }

    static func fast(_ configuration: inout ServerConfiguration) { configuration.webhooks = fastDelivery() }
    static func noDelivery(_ configuration: inout ServerConfiguration) { configuration.webhooks = nil }

    /// An endpoint for `receiver`, which is told its secret.
    static func create(_ admin: TestClient, _ receiver: WebhookReceiver, events: [String] = ["order.*"]) async throws -> [String: Any] {
        let patterns = events.map { "\"\($0)\"" }.joined(separator: ",")
        let reply = try await admin.call("WEBHOOK.CREATE", #"{"url":"\#(receiver.url())","events":[\#(patterns)],"description":"test"}"#).json()
        receiver.use(secret: try #require(reply["secret"] as? String))
        return reply
    }

    static func deliveries(_ admin: TestClient, _ endpoint: Int) async throws -> [[String: Any]] {
        try await admin.call("WEBHOOK.DELIVERIES", "\(endpoint)").json()["items"] as! [[String: Any]]
    }

    static func endpoint(_ admin: TestClient, _ id: Int) async throws -> [String: Any] {
        let items = try await admin.call("WEBHOOK.LIST").json()["items"] as! [[String: Any]]
        return try #require(items.first { $0["id"] as? Int == id })
    }

    /// Polls `condition` every 20 ms for at most `timeout`.
    static func eventually(timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("condition not met within \(timeout)")
    }

    @Test func anOrderPlacedArrivesOnceSignedWithTheEventAsItsBody() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { Task { await receiver.stop() } }
        try await TestServer.with(configure: Self.fast) { server in
            let product = try await server.product(stock: 20)
            try await server.client { (admin: TestClient) async throws -> Void in
                try await server.logIn(admin, admin: true)
                let created = try await Self.create(admin, receiver)
                let endpointID = try #require(created["id"] as? Int)
                let secret = try #require(created["secret"] as? String)
                #expect(secret.hasPrefix("whsec_"))
                #expect(created["url"] as? String == receiver.url() && created["events"] as? [String] == ["order.*"])
                #expect(created["disabled_at"] is NSNull && created["description"] as? String == "test")
                // Listed without its secret.
                let listed = try await Self.endpoint(admin, endpointID)
                #expect(listed["secret"] == nil && listed["url"] as? String == receiver.url())
                #expect(!(try await admin.call("WEBHOOK.LIST").description.contains(secret)))

                let order = try await server.client { (customer: TestClient) async throws -> [String: Any] in
                    try await server.logIn(customer)
                    return try await EventServerTests.place(customer, product)
                }
                let request = try #require(try await receiver.waitFor(1).first)
                #expect(request.method == "POST" && request.path == "/hook")
                #expect(request.headers["content-type"] == "application/json")
                #expect(request.signatureValid)
                let timestamp = try #require(request.headers["webhook-timestamp"].flatMap { Int64($0) })
                #expect(abs(Double(timestamp) - Date().timeIntervalSince1970) < 60)

                let events = try await admin.call("EVENTS.READ").json()["items"] as! [[String: Any]]
                let placed = try #require(events.first { $0["type"] as? String == "order.placed" })
                let eventID = try #require(placed["id"] as? Int)
                #expect(request.id == "evt_\(eventID)")
                let body = request.json
                #expect(body["type"] as? String == "order.placed")
                #expect(NSDictionary(dictionary: body["data"] as! [String: Any]) == NSDictionary(dictionary: placed))
                #expect((body["data"] as? [String: Any]).flatMap { $0["data"] as? [String: Any] }?["id"] as? Int == order["id"] as? Int)
                let stamp = try #require(body["timestamp"] as? String)
                #expect(try Date(stamp, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)).timeIntervalSinceNow < 60)

                try await Self.eventually { try await Self.deliveries(admin, endpointID).first?["state"] as? String == "delivered" }
                let delivery = try #require(try await Self.deliveries(admin, endpointID).first)
                #expect(delivery["event_id"] as? Int == eventID && delivery["attempt_count"] as? Int == 1)
                let attempts = delivery["attempts"] as! [[String: Any]]
                #expect(attempts.count == 1 && attempts[0]["status_code"] as? Int == 200 && attempts[0]["error"] is NSNull)

                // Only once; and a replay sends it again under the same webhook-id.
                try await Task.sleep(for: .milliseconds(300))
                #expect(receiver.requests.count == 1)
                let replayed = try await admin.call("WEBHOOK.REPLAY", "\(eventID)").json()
                #expect(replayed["endpoints"] as? [Int] == [endpointID])
                let again = try await receiver.waitFor(2)
                #expect(again[1].id == "evt_\(eventID)" && again[1].signatureValid && again[1].body == request.body)
            }
        }
    }

    @Test func aFailingReceiverGetsRetriesAndLaterEventsFollowInOrder() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { Task { await receiver.stop() } }
        try await TestServer.with(configure: Self.fast) { server in
            let product = try await server.product(stock: 20)
            try await server.client { (admin: TestClient) async throws -> Void in
                try await server.logIn(admin, admin: true)
                let endpointID = try #require(try await Self.create(admin, receiver)["id"] as? Int)
                receiver.answer(500, 500)
                try await server.client { (customer: TestClient) async throws -> Void in
                    try await server.logIn(customer)
                    let order = try await EventServerTests.place(customer, product)
                    try await server.payByHand(order["id"] as! Int)
                }
                let requests = try await receiver.waitFor(4)
                let events = try await admin.call("EVENTS.READ").json()["items"] as! [[String: Any]]
                let ids = events.map { "evt_\($0["id"] as! Int)" }
                #expect(events.map { $0["type"] as! String } == ["order.placed", "order.paid"])
                // The first event three times (500, 500, 200); the second only after it.
                #expect(requests.map(\.id) == [ids[0], ids[0], ids[0], ids[1]])
                #expect(requests.map(\.status) == [500, 500, 200, 200])
                #expect(requests.allSatisfy { $0.signatureValid })
                try await Self.eventually { try await Self.deliveries(admin, endpointID).map { $0["state"] as? String } == ["delivered", "delivered"] }
                let deliveries = try await Self.deliveries(admin, endpointID)
                let attempts = deliveries[0]["attempts"] as! [[String: Any]]
                #expect(deliveries[0]["attempt_count"] as? Int == 3)
                #expect(attempts.map { $0["status_code"] as? Int } == [500, 500, 200])
                #expect(attempts[0]["error"] as? String == "the receiver answered 500")
                #expect(deliveries[1]["attempt_count"] as? Int == 1)
                try await Task.sleep(for: .milliseconds(300))
                #expect(receiver.requests.count == 4, "nothing sent twice once delivered")
            }
        }
    }

    @Test func a410GoneDisablesTheEndpointAtOnce() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { Task { await receiver.stop() } }
        try await TestServer.with(configure: Self.fast) { server in
            let product = try await server.product(stock: 20)
            try await server.client { (admin: TestClient) async throws -> Void in
                try await server.logIn(admin, admin: true)
                let endpointID = try #require(try await Self.create(admin, receiver)["id"] as? Int)
                receiver.answer(410)
                _ = try await EventServerTests.place(admin, product)
                try await receiver.waitFor(1)
                try await Self.eventually { try await Self.endpoint(admin, endpointID)["disabled_at"] is String }
                let endpoint = try await Self.endpoint(admin, endpointID)
                #expect((endpoint["disabled_reason"] as? String)?.contains("410") == true)
                #expect(try await Self.deliveries(admin, endpointID).first?["state"] as? String == "dead")
                // Disabled: later events are not sent.
                _ = try await EventServerTests.place(admin, product)
                try await Task.sleep(for: .milliseconds(500))
                #expect(receiver.requests.count == 1)
                #expect(try await Self.deliveries(admin, endpointID).count == 1)
            }
        }
    }

    /// The worker records an attempt again when the commit's answer was lost (the
    /// database restarted, say), and the first commit may have gone through: the attempt
    /// is still written once, and the delivery counts it once.
    @Test func anAttemptRecordedTwiceIsWrittenOnce() async throws {
        // No worker: this test claims and records by hand.
        try await TestServer.with(configure: { $0.webhooks = nil }) { server in
            let webhooks = WebhookRepository(pool: server.stockroom.pool)
            let (endpoint, _) = try await webhooks.create(url: "http://127.0.0.1:9/hook", events: ["order.*"])
            let product = try await server.product(stock: 5)
            try await server.client { (customer: TestClient) async throws -> Void in
                try await server.logIn(customer)
                _ = try await EventServerTests.place(customer, product)
            }
            _ = try await server.stockroom.events.sequence()
            #expect(try await webhooks.fanOut() == 1)
            let claim = try #require(try await webhooks.claim(limit: 1, lease: .seconds(60), leaseToken: "test").first)
            let attempt = WebhookAttempt(startedAt: Date(), statusCode: 503, latencyMs: 12, error: "the receiver answered 503")
            for _ in 0..<2 {
                try await webhooks.record(claim, attempt: attempt, decision: .retry(after: .seconds(60)), disableAfterDeadDeliveries: 5)
            }
            let delivery = try #require(try await webhooks.deliveries(endpoint: endpoint.id).first)
            #expect(delivery.attempts.count == 1 && delivery.attemptCount == 1, "\(delivery.attempts)")
            #expect(delivery.state == .pending && delivery.lastStatus == 503)
        }
    }

    @Test func deadDeliveriesInARowDisableTheEndpoint() async throws {
        let refusing = try RefusingPort()
        defer { withExtendedLifetime(refusing) {} }  // refusing until the test ends
        // AsyncHTTPClient retries a refused connection until the request's deadline, so
        // each attempt lasts the whole timeout: keep it short here.
        var delivery = Self.fastDelivery()
        delivery.requestTimeout = .milliseconds(300)
        try await TestServer.with(configure: { $0.webhooks = delivery }) { server in
            let product = try await server.product(stock: 20)
            try await server.client { (admin: TestClient) async throws -> Void in
                try await server.logIn(admin, admin: true)
                let created = try await admin.call("WEBHOOK.CREATE", #"{"url":"http://127.0.0.1:\#(refusing.port)/hook","events":["order.*"]}"#).json()
                let endpointID = try #require(created["id"] as? Int)
                let secret = try #require(created["secret"] as? String)
                _ = try await EventServerTests.place(admin, product)
                _ = try await EventServerTests.place(admin, product)
                try await Self.eventually { try await Self.endpoint(admin, endpointID)["disabled_at"] is String }
                let endpoint = try await Self.endpoint(admin, endpointID)
                #expect(endpoint["consecutive_dead"] as? Int == 2)
                #expect((endpoint["disabled_reason"] as? String)?.contains("2 deliveries in a row") == true)
                let deliveries = try await Self.deliveries(admin, endpointID)
                #expect(deliveries.map { $0["state"] as? String } == ["dead", "dead"])
                for delivery in deliveries {
                    let attempts = delivery["attempts"] as! [[String: Any]]
                    #expect(attempts.count == 3, "the first try and two retries")
                    // Refused, as a rule; "timed out" when, on a machine busy with the
                    // rest of the suite, the 300 ms deadline passed before the refusal
                    // came back. Either way no response, and the cause is recorded.
                    #expect(attempts.allSatisfy { attempt in
                        let error = attempt["error"] as? String ?? ""
                        return attempt["status_code"] is NSNull && (error.contains("Connection refused") || error == "timed out")
                    }, "\(attempts.map { $0["error"] ?? "none" })")
                }
                #expect(!(try await admin.call("WEBHOOK.DELIVERIES", "\(endpointID)").description.contains(secret)))
            }
        }
    }

    @Test func twoWorkersDeliverEachEventOncePerEndpointInOrder() async throws {
        let first = try await WebhookReceiver.start(), second = try await WebhookReceiver.start()
        defer { Task { await first.stop(); await second.stop() } }
        try await TestServer.with(configure: Self.noDelivery) { server in
            let product = try await server.product(stock: 100)
            try await server.client { (admin: TestClient) async throws -> Void in
                try await server.logIn(admin, admin: true)
                _ = try await Self.create(admin, first)
                _ = try await Self.create(admin, second)
                // Slow answers, so that a second request to one endpoint would overlap.
                first.answer(after: .milliseconds(30))
                second.answer(after: .milliseconds(30))
                var logger = Logger(label: "test.webhooks")
                logger.logLevel = .warning
                let workers = (0..<2).map { _ in
                    WebhookWorker(stockroom: server.stockroom, configuration: Self.fastDelivery(), encode: { #"{"id":\#($0.id)}"# }, logger: logger)
                }
                let running = workers.map { worker in Task { await worker.run() } }
                defer { for worker in workers { worker.stop() } }
                for _ in 0..<6 {
                    let order = try await EventServerTests.place(admin, product)
                    _ = try await admin.call("ORDER.PAY", "\(order["id"] as! Int)")
                }
                let a = try await first.waitFor(12), b = try await second.waitFor(12)
                try await Task.sleep(for: .milliseconds(400))
                for worker in workers { worker.stop() }
                for task in running { await task.value }
                let expected = (try await admin.call("EVENTS.READ").json()["items"] as! [[String: Any]]).map { "evt_\($0["id"] as! Int)" }
                #expect(expected.count == 12)
                if first.requests.count + second.requests.count != 24 {
                    // Say why, to tell a retry after a slow answer from a double claim.
                    for endpoint in [1, 2] { Issue.record("deliveries: \(try await Self.deliveries(admin, endpoint))") }
                }
                #expect(first.requests.map(\.id) == expected, "each event once, in order")
                #expect(second.requests.map(\.id) == expected)
                #expect((a + b).allSatisfy { $0.signatureValid && $0.status == 200 })
                #expect(first.maxInFlight == 1 && second.maxInFlight == 1, "one request at a time per endpoint")
            }
        }
    }

    @Test func eventsCommittedWhileNoWorkerRunsAreDeliveredWhenOneStarts() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { Task { await receiver.stop() } }
        try await TestServer.with(configure: Self.noDelivery) { server in
            let product = try await server.product(stock: 20)
            let endpointID = try await server.client { (admin: TestClient) async throws -> Int in
                try await server.logIn(admin, admin: true)
                return try #require(try await Self.create(admin, receiver)["id"] as? Int)
            }
            // Written straight through the repositories, as a program without the service
            // would; numbered (the service's feed would, within a second), not delivered.
            let customer = try await server.register()
            let principal = Principal(userID: Int64(customer.id), role: .customer)
            for _ in 0..<3 {
                _ = try await server.stockroom.orders.place(OrderRequest(lines: [.init(productID: Int64(product), quantity: 1)]), as: principal)
            }
            try await server.stockroom.events.sequence()
            // A worker that died holding a lease on the first delivery.
            try await WebhookRepository(pool: server.stockroom.pool).fanOut()
            let abandoned = try await WebhookRepository(pool: server.stockroom.pool).claim(limit: 1, lease: .milliseconds(300), leaseToken: "dead-worker")
            let leased = try #require(abandoned.first)
            try await Task.sleep(for: .milliseconds(200))
            #expect(receiver.requests.isEmpty)

            var configuration = Self.fastDelivery()
            configuration.sequencesEvents = true
            configuration.sequenceInterval = .milliseconds(200)
            var logger = Logger(label: "test.webhooks")
            logger.logLevel = .warning
            let worker = WebhookWorker(stockroom: server.stockroom, configuration: configuration, encode: { #"{"id":\#($0.id)}"# }, logger: logger)
            let running = Task { await worker.run() }
            let requests = try await receiver.waitFor(3)
            worker.stop()
            await running.value
            let ids = requests.map { Int($0.id.dropFirst(4)) ?? 0 }
            #expect(ids.count == 3 && ids == ids.sorted() && Set(ids).count == 3)
            #expect(requests[0].id == "evt_\(leased.eventID)", "the leased delivery first, once its lease expired")
            #expect(requests.allSatisfy { $0.signatureValid })
            try await server.client { (admin: TestClient) async throws -> Void in
                try await server.logIn(admin, admin: true)
                #expect(try await Self.deliveries(admin, endpointID).map { $0["state"] as? String } == ["delivered", "delivered", "delivered"])
            }
        }
    }

    @Test func aWorkerSleepsWhileItsOnlyDeliveriesWaitForARetry() async throws {
        let receiver = try await WebhookReceiver.start()
        defer { Task { await receiver.stop() } }
        try await TestServer.with(configure: Self.noDelivery) { server in
            let product = try await server.product(stock: 20)
            try await server.client { (admin: TestClient) async throws -> Void in
                try await server.logIn(admin, admin: true)
                _ = try await Self.create(admin, receiver)
                receiver.answer(500)
                var configuration = Self.fastDelivery()
                configuration.retrySchedule = RetrySchedule(delays: [.seconds(30)], jitter: 0)
                var logger = Logger(label: "test.webhooks")
                logger.logLevel = .warning
                let worker = WebhookWorker(stockroom: server.stockroom, configuration: configuration, encode: { #"{"id":\#($0.id)}"# }, logger: logger)
                let running = Task { await worker.run() }
                // The first fails and waits 30 s; the second queues behind it.
                _ = try await EventServerTests.place(admin, product)
                try await receiver.waitFor(1)
                _ = try await EventServerTests.place(admin, product)
                try await Task.sleep(for: .milliseconds(500))
                let before = worker.passes
                try await Task.sleep(for: .seconds(1))
                let during = worker.passes - before
                worker.stop()
                await running.value
                #expect(during <= 2, "\(during) passes in a second: the worker must sleep until the retry is due")
                #expect(receiver.requests.count == 1)
            }
        }
    }

    @Test func finishedDeliveriesArePrunedAndPendingOnesKept() async throws {
        try await TestServer.with(configure: Self.noDelivery) { server in
            let product = try await server.product(stock: 20)
            let webhooks = WebhookRepository(pool: server.stockroom.pool)
            let (endpoint, _) = try await webhooks.create(url: "http://127.0.0.1:9/hook", events: ["order.*"])
            let customer = try await server.register()
            let principal = Principal(userID: Int64(customer.id), role: .customer)
            for _ in 0..<2 { _ = try await server.stockroom.orders.place(OrderRequest(lines: [.init(productID: Int64(product), quantity: 1)]), as: principal) }
            try await server.stockroom.events.sequence()
            #expect(try await webhooks.fanOut() == 2)
            #expect(try await webhooks.fanOut() == 0, "each event fanned out once")
            let claims = try await webhooks.claim(limit: 10, lease: .seconds(60), leaseToken: "t")
            #expect(claims.count == 1, "head-of-line: the endpoint's second delivery waits for its first")
            let attempt = WebhookAttempt(startedAt: Date(), statusCode: 200, latencyMs: 3, error: nil)
            try await webhooks.record(claims[0], attempt: attempt, decision: .delivered, disableAfterDeadDeliveries: 5)
            #expect(try await webhooks.pruneFinished(before: Date().addingTimeInterval(-60)) == 0, "too recent")
            #expect(try await webhooks.pruneFinished(before: Date().addingTimeInterval(60)) == 1)
            let left = try await webhooks.deliveries(endpoint: endpoint.id)
            #expect(left.map(\.state) == [.pending] && left[0].eventID == claims[0].eventID + 1)
        }
    }

    @Test func webhookCommandsAreForAdminsAndCheckTheirInput() async throws {
        try await TestServer.with(configure: Self.noDelivery) { server in
            try await server.client { (anonymous: TestClient) async throws -> Void in
                #expect(try await anonymous.call("WEBHOOK.LIST").errorCode == "NOAUTH")
            }
            try await server.client { (customer: TestClient) async throws -> Void in
                try await server.logIn(customer)
                #expect(try await customer.call("WEBHOOK.CREATE", #"{"url":"https://example.com/h","events":["*"]}"#).errorCode == "NOPERM")
                #expect(try await customer.call("WEBHOOK.LIST").errorCode == "NOPERM")
                #expect(try await customer.call("WEBHOOK.REPLAY", "1").errorCode == "NOPERM")
            }
            try await server.client { (admin: TestClient) async throws -> Void in
                try await server.logIn(admin, admin: true)
                let long = "https://example.com/" + String(repeating: "a", count: 2030)
                let bad: [(String, String)] = [
                    (#"{"url":"ftp://example.com/h","events":["*"]}"#, "url"),
                    (#"{"url":"not a url","events":["*"]}"#, "url"),
                    (#"{"url":"\#(long)","events":["*"]}"#, "url"),
                    (#"{"url":"https://example.com/h","events":[]}"#, "events"),
                    (#"{"url":"https://example.com/h","events":[\#((0..<21).map { "\"e\($0).*\"" }.joined(separator: ","))]}"#, "events"),
                    (#"{"url":"https://example.com/h","events":["order .*"]}"#, "events"),
                    (#"{"url":"https://example.com/h","events":["\#(String(repeating: "a", count: 129))"]}"#, "events"),
                    (#"{"url":"https://example.com/h","events":[1]}"#, "events[0]"),
                    (#"{"url":"https://example.com/h"}"#, "events"),
                    (#"{"url":"https://example.com/h","events":["*"],"description":"\#(String(repeating: "d", count: 501))"}"#, "description"),
                    ("[]", "json"),
                ]
                for (payload, field) in bad {
                    let reply = try await admin.call("WEBHOOK.CREATE", payload)
                    #expect(reply.errorCode == "INVALID", "\(payload.prefix(80))")
                    if case .error(let message) = reply { #expect(message.hasPrefix("INVALID \(field)"), "\(message)") }
                }
                #expect(try await admin.call("WEBHOOK.LIST").json()["items"] as? [Any] != nil)
                #expect((try await admin.call("WEBHOOK.LIST").json()["items"] as! [Any]).isEmpty, "nothing invalid was created")
                #expect(try await admin.call("WEBHOOK.DELETE", "999").errorCode == "NOTFOUND")
                #expect(try await admin.call("WEBHOOK.DELETE", "abc").errorCode == "INVALID")
                #expect(try await admin.call("WEBHOOK.DELIVERIES", "999").errorCode == "NOTFOUND")
                #expect(try await admin.call("WEBHOOK.DELIVERIES", "1", "LIMIT", "0").errorCode == "INVALID")
                #expect(try await admin.call("WEBHOOK.REPLAY", "999").errorCode == "NOTFOUND")
                #expect(try await admin.call("WEBHOOK.CREATE").errorCode == "ERR")

                let created = try await admin.call("WEBHOOK.CREATE", #"{"url":"https://example.com/h","events":["order.*","product.low_stock"]}"#).json()
                let id = try #require(created["id"] as? Int)
                #expect(created["description"] as? String == "" && created["consecutive_dead"] as? Int == 0)
                #expect(try await admin.call("WEBHOOK.DELIVERIES", "\(id)").json()["next"] is NSNull)
                #expect(try await admin.call("WEBHOOK.DELETE", "\(id)") == .simple("OK"))
                #expect(try await admin.call("WEBHOOK.DELETE", "\(id)").errorCode == "NOTFOUND")
            }
        }
    }
}
