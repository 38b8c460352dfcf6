import Foundation
import LibPQ
import Logging
import Prometheus
import Stockroom
import StockroomDelivery
import StockroomServer
import Testing

/// Payments through the stand-in processor (`StandInProcessor`), end to end: ORDER.CHECKOUT,
/// the processor's signed webhook on the operations listener, refunds through the jobs
/// the outbox writes.
@Suite struct PaymentTests {
    /// A server with a payment processor, the webhook route, and retries in milliseconds.
    static func withPayments(mailRelay: Int? = nil, _ body: (TestServer, StandInProcessor) async throws -> Void) async throws {
        let processor = try await StandInProcessor.start()
        defer { Task { await processor.stop() } }
        let operations = TestServer.Operations(registry: PrometheusCollectorRegistry())
        try await TestServer.with(configure: { configuration in
            configuration.payments = processor.configuration
            configuration.jobs?.retrySchedule = RetrySchedule(delays: [.milliseconds(100), .milliseconds(200), .milliseconds(300)], jitter: 0)
        }, operations: operations, jobHandlers: { stockroom in
            guard let mailRelay else { return [] }
            return [try MailJobHandler(stockroom: stockroom, url: "smtp://127.0.0.1:\(mailRelay)", from: "Shop <shop@example.com>", logger: Logger(label: "test.mail"))]
        }) { server in try await body(server, processor) }
    }

    static func order(_ server: TestServer, _ customer: TestClient, quantity: Int = 2) async throws -> Int {
        let product = try await server.product(price: 1250, stock: 50)
        let order = try await customer.call("ORDER.PLACE", #"{"lines":[{"product_id":\#(product),"quantity":\#(quantity)}]}"#).json()
        return order["id"] as! Int
    }

    static func status(_ server: TestServer, _ orderID: Int) async throws -> String {
        try await server.stockroom.pool.query("SELECT status FROM orders WHERE id = \(Int64(orderID))")[0][0, as: String.self]
    }

    static func eventTypes(_ server: TestServer, _ orderID: Int) async throws -> [String] {
        try await server.stockroom.pool.query("SELECT type FROM events WHERE subject_id = \(Int64(orderID)) AND type LIKE 'order.%' ORDER BY seq").map { try $0[0, as: String.self] }
    }

    /// Waits up to 10 s for `condition`.
    static func eventually(_ what: String, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("not within 10 s: \(what)")
    }

    @Test func checkoutAsksTheProcessorOnceAndReturnsTheClientSecret() async throws {
        try await Self.withPayments { server, processor in
            try await server.client { (customer: TestClient) async throws -> Void in
                try await server.logIn(customer)
                let orderID = try await Self.order(server, customer)
                let reply = try await customer.call("ORDER.CHECKOUT", "\(orderID)").json()
                let intent = try #require(processor.intents.first)
                #expect(reply["payment_intent"] as? String == intent.id)
                #expect(reply["client_secret"] as? String == intent.clientSecret)
                #expect(reply["amount_cents"] as? Int == 2500 && reply["currency"] as? String == "EUR" && reply["order_id"] as? Int == orderID)
                let request = try #require(processor.requests.first)
                #expect(request.path == "/v1/payment_intents" && request.headers["authorization"] == "Bearer \(StandInProcessor.secretKey)")
                #expect(request.form == ["amount": "2500", "currency": "eur", "metadata[order_id]": "\(orderID)"])
                #expect(request.headers["content-type"] == "application/x-www-form-urlencoded")
                #expect(request.headers["idempotency-key"]?.isEmpty == false)

                // Again: the same intent, without asking the processor.
                #expect(try await customer.call("ORDER.CHECKOUT", "\(orderID)").json()["payment_intent"] as? String == intent.id)
                #expect(processor.requests.count == 1)
                #expect(try await Self.status(server, orderID) == "pending", "paid only when the processor says so")

                // Nobody else checks it out; a customer does not mark it paid.
                try await server.client { (other: TestClient) async throws -> Void in
                    try await server.logIn(other)
                    #expect(try await other.call("ORDER.CHECKOUT", "\(orderID)").errorCode == "NOTFOUND")
                    #expect(try await other.call("ORDER.CHECKOUT", "x").errorCode == "INVALID")
                }
                try await server.client { (admin: TestClient) async throws -> Void in
                    try await server.logIn(admin, admin: true)
                    #expect(try await admin.call("ORDER.CHECKOUT", "\(orderID)").errorCode == "NOPERM")
                }
                #expect(try await customer.call("ORDER.PAY", "\(orderID)").errorCode == "NOPERM")
                _ = try await customer.call("ORDER.CANCEL", "\(orderID)")
                #expect(try await customer.call("ORDER.CHECKOUT", "\(orderID)") == .error("STATE cannot check out an order that is cancelled"))
            }
        }
    }

    @Test func aCheckoutWhoseAnswerWasLostGetsTheSameIntentWhenRetried() async throws {
        try await Self.withPayments { server, processor in
            try await server.client { (customer: TestClient) async throws -> Void in
                try await server.logIn(customer)
                let orderID = try await Self.order(server, customer)
                processor.loseAnswers(1)
                #expect(try await customer.call("ORDER.CHECKOUT", "\(orderID)") == .error("UNAVAILABLE the payment processor is unavailable, try again"))
                processor.fail(402)
                #expect(try await customer.call("ORDER.CHECKOUT", "\(orderID)").errorCode == "PAYMENT")
                let reply = try await customer.call("ORDER.CHECKOUT", "\(orderID)").json()
                #expect(processor.intents.count == 1, "one intent, whatever the number of tries")
                #expect(reply["payment_intent"] as? String == processor.intents.first?.id)
                let keys = Set(processor.requests.compactMap { $0.headers["idempotency-key"] })
                #expect(keys.count == 1)
            }
        }
    }

    @Test func theProcessorsWebhookPaysTheOrderExactlyOnce() async throws {
        try await Self.withPayments { server, processor in
            let http = try #require(server.operationsPort)
            try await server.client { (customer: TestClient) async throws -> Void in
                try await server.logIn(customer)
                let orderID = try await Self.order(server, customer)
                let other = try await Self.order(server, customer)
                let intentID = try await customer.call("ORDER.CHECKOUT", "\(orderID)").json()["payment_intent"] as! String
                let otherIntent = try await customer.call("ORDER.CHECKOUT", "\(other)").json()["payment_intent"] as! String

                // Forged, stale, unsigned, and the amount changed after signing: refused.
                let forOther = processor.succeededEvent(otherIntent)
                #expect(try await StandInProcessor.deliver(forOther, to: http, secret: "whsec_not_the_secret") == 400)
                #expect(try await StandInProcessor.deliver(forOther, to: http, timestamp: Int64(Date().timeIntervalSince1970) - 301) == 400)
                #expect(try await StandInProcessor.deliver(forOther, to: http, signature: "") == 400)
                let signed = ProcessorSignature.header(body: forOther, secret: StandInProcessor.webhookSecret, timestamp: Int64(Date().timeIntervalSince1970))
                #expect(try await StandInProcessor.deliver(processor.succeededEvent(otherIntent, amount: 1), to: http, signature: signed) == 400)
                #expect(try await Self.status(server, other) == "pending")

                // Too big to be an event: refused before it is all read.
                #expect(try await StandInProcessor.deliver(Array(repeating: 0x20, count: PaymentWebhook.maxBodyBytes + 1), to: http) == 413)

                // The real one, delivered five times at once and twice more, and another
                // event for the same intent.
                let event = processor.succeededEvent(intentID)
                let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<5 { group.addTask { try await StandInProcessor.deliver(event, to: http) } }
                    return try await group.reduce(into: [Int]()) { $0.append($1) }
                }
                #expect(statuses == [200, 200, 200, 200, 200])
                for _ in 0..<2 { #expect(try await StandInProcessor.deliver(event, to: http) == 200) }
                #expect(try await StandInProcessor.deliver(processor.succeededEvent(intentID), to: http) == 200)
                #expect(try await Self.status(server, orderID) == "paid")
                #expect(try await Self.eventTypes(server, orderID) == ["order.placed", "order.paid"])
                let order = try await customer.call("ORDER.GET", "\(orderID)").json()
                let history = order["history"] as! [[String: Any]]
                #expect(history.last?["status"] as? String == "paid" && history.last?.keys.contains("changed_by") == false, "paid by the processor, not a user")
                #expect(try await Self.status(server, other) == "pending")
                // A signed event of another type, or for an intent not ours: acknowledged.
                let ignored = Array(#"{"id":"evt_x","type":"charge.refunded","data":{"object":{}}}"#.utf8)
                #expect(try await StandInProcessor.deliver(ignored, to: http) == 200)
                let stranger = Array(#"{"id":"evt_y","type":"payment_intent.succeeded","data":{"object":{"id":"pi_stranger","amount":5,"currency":"eur"}}}"#.utf8)
                #expect(try await StandInProcessor.deliver(stranger, to: http) == 200)
            }
        }
    }

    @Test func cancellingAPaidOrderRefundsItThroughTheOutbox() async throws {
        try await Self.withPayments { server, processor in
            let http = try #require(server.operationsPort)
            try await server.client { (customer: TestClient) async throws -> Void in
                try await server.logIn(customer)
                let orderID = try await Self.order(server, customer)
                let intentID = try await customer.call("ORDER.CHECKOUT", "\(orderID)").json()["payment_intent"] as! String
                #expect(try await StandInProcessor.deliver(processor.succeededEvent(intentID), to: http) == 200)
                // The processor is down for the first two tries: retried, refunded once.
                processor.fail(503, 500)
                #expect(try await customer.call("ORDER.CANCEL", "\(orderID)").json()["status"] as? String == "cancelled")
                try await Self.eventually("the refund") { try await server.stockroom.payments.payment(orderID: Int64(orderID))?.status == .refunded }
                let refunds = processor.requests.filter { $0.path == "/v1/refunds" }
                #expect(refunds.map(\.status) == [503, 500, 200])
                #expect(refunds.last?.form == ["payment_intent": intentID, "metadata[order_id]": "\(orderID)"])
                #expect(Set(refunds.compactMap { $0.headers["idempotency-key"] }).count == 1, "one key across retries")
                #expect(processor.refundCount == 1)
                // The payment is marked refunded by the job's handler; the job is marked
                // done by the worker after it, in a statement of its own.
                let jobs = JobRepository(pool: server.stockroom.pool)
                try await Self.eventually("the refund job done") { try await jobs.job(kind: .refund, orderID: Int64(orderID))?.state == .done }
                let job = try await jobs.job(kind: .refund, orderID: Int64(orderID))
                #expect(job?.state == .done && job?.attempts == 3)
                #expect(try await server.stockroom.payments.payment(orderID: Int64(orderID))?.refundID?.hasPrefix("re_") == true)
            }
        }
    }

    /// ORDER.PAYMENT follows the payment from checkout to refund, for the order's owner
    /// and admins only, and never shows the client secret again.
    @Test func orderPaymentShowsWhereThePaymentStands() async throws {
        try await Self.withPayments { server, processor in
            let http = try #require(server.operationsPort)
            try await server.client { (customer: TestClient) async throws -> Void in
                try await server.client { (other: TestClient) async throws -> Void in
                    try await server.logIn(customer)
                    try await server.logIn(other)
                    let orderID = try await Self.order(server, customer)
                    #expect(try await customer.call("ORDER.PAYMENT", "\(orderID)").errorCode == "NOTFOUND", "no checkout yet")
                    let intentID = try await customer.call("ORDER.CHECKOUT", "\(orderID)").json()["payment_intent"] as! String
                    let created = try await customer.call("ORDER.PAYMENT", "\(orderID)").json()
                    #expect(created["status"] as? String == "created" && created["payment_intent"] as? String == intentID)
                    #expect(created["order_id"] as? Int == orderID && created["amount_cents"] as? Int == 2500 && created["currency"] as? String == "EUR")
                    #expect(created["client_secret"] == nil && created["refund_id"] is NSNull, "\(created)")
                    #expect(try await StandInProcessor.deliver(processor.succeededEvent(intentID), to: http) == 200)
                    #expect(try await customer.call("ORDER.PAYMENT", "\(orderID)").json()["status"] as? String == "succeeded")

                    _ = try await customer.call("ORDER.CANCEL", "\(orderID)")
                    try await Self.eventually("the refund") {
                        try await customer.call("ORDER.PAYMENT", "\(orderID)").json()["status"] as? String == "refunded"
                    }
                    let refunded = try await customer.call("ORDER.PAYMENT", "\(orderID)").json()
                    #expect((refunded["refund_id"] as? String)?.hasPrefix("re_") == true, "\(refunded)")

                    #expect(try await other.call("ORDER.PAYMENT", "\(orderID)").errorCode == "NOTFOUND", "not their order")
                    #expect(try await customer.call("ORDER.PAYMENT", "x").errorCode == "INVALID")
                    try await server.client { (admin: TestClient) async throws -> Void in
                        try await server.logIn(admin, admin: true)
                        #expect(try await admin.call("ORDER.PAYMENT", "\(orderID)").json()["status"] as? String == "refunded")
                    }
                }
            }
        }
    }

    /// A refund the processor refused is dead: an admin finds it with JOB.LIST and, once
    /// the cause is fixed, puts it back with JOB.RETRY. The retry keeps the refund's
    /// idempotency key, so the processor can never refund twice.
    @Test func aDeadRefundIsListedAndRetriedByAnAdmin() async throws {
        try await Self.withPayments { server, processor in
            let http = try #require(server.operationsPort)
            try await server.client { (customer: TestClient) async throws -> Void in
                try await server.client { (admin: TestClient) async throws -> Void in
                    try await server.logIn(customer)
                    try await server.logIn(admin, admin: true)
                    let orderID = try await Self.order(server, customer)
                    let intentID = try await customer.call("ORDER.CHECKOUT", "\(orderID)").json()["payment_intent"] as! String
                    #expect(try await StandInProcessor.deliver(processor.succeededEvent(intentID), to: http) == 200)
                    processor.fail(400)  // a 4xx: trying again unchanged cannot help, dead at once
                    _ = try await customer.call("ORDER.CANCEL", "\(orderID)")
                    let jobs = JobRepository(pool: server.stockroom.pool)
                    try await Self.eventually("the refund job dead") { try await jobs.job(kind: .refund, orderID: Int64(orderID))?.state == .dead }

                    let dead = try await admin.call("JOB.LIST", "STATE", "dead").json()["items"] as! [[String: Any]]
                    let job = try #require(dead.first { $0["order_id"] as? Int == orderID })
                    #expect(job["kind"] as? String == "payment.refund" && job["state"] as? String == "dead")
                    #expect(job["attempts"] as? Int == 1 && job["next_attempt_at"] is NSNull && job["finished_at"] is String)
                    #expect((job["last_error"] as? String)?.isEmpty == false, "\(job)")
                    let id = try #require(job["id"] as? Int)
                    let pending = try await admin.call("JOB.LIST", "STATE", "pending").json()["items"] as! [[String: Any]]
                    #expect(!pending.contains { $0["id"] as? Int == id } && pending.allSatisfy { $0["state"] as? String == "pending" })

                    let retried = try await admin.call("JOB.RETRY", "\(id)").json()
                    #expect(retried["state"] as? String == "pending" && retried["attempts"] as? Int == 0 && retried["next_attempt_at"] is String)
                    try await Self.eventually("the refund") { try await server.stockroom.payments.payment(orderID: Int64(orderID))?.status == .refunded }
                    try await Self.eventually("the refund job done") { try await jobs.job(kind: .refund, orderID: Int64(orderID))?.state == .done }
                    let refunds = processor.requests.filter { $0.path == "/v1/refunds" }
                    #expect(refunds.map(\.status) == [400, 200])
                    #expect(Set(refunds.compactMap { $0.headers["idempotency-key"] }).count == 1, "one key across the retry by hand")
                    #expect(processor.refundCount == 1)

                    // Only a dead job goes back; only admins see or retry jobs; bad input is named.
                    let again = try await admin.call("JOB.RETRY", "\(id)")
                    #expect(again.errorCode == "STATE" && "\(again)".contains("job \(id) is done"), "\(again)")
                    #expect(try await admin.call("JOB.RETRY", "999999999").errorCode == "NOTFOUND")
                    #expect(try await admin.call("JOB.LIST", "STATE", "lost").errorCode == "INVALID")
                    #expect(try await admin.call("JOB.LIST", "LIMIT", "0").errorCode == "INVALID")
                    #expect(try await admin.call("JOB.RETRY", "x").errorCode == "INVALID")
                    #expect(try await customer.call("JOB.LIST").errorCode == "NOPERM")
                    #expect(try await customer.call("JOB.RETRY", "\(id)").errorCode == "NOPERM")
                    let all = try await admin.call("JOB.LIST", "LIMIT", "500").json()["items"] as! [[String: Any]]
                    #expect(all.contains { $0["id"] as? Int == id && $0["state"] as? String == "done" })
                }
            }
        }
    }

    @Test func aPaymentThatArrivesAfterTheOrderWasCancelledIsRefunded() async throws {
        try await Self.withPayments { server, processor in
            let http = try #require(server.operationsPort)
            try await server.client { (customer: TestClient) async throws -> Void in
                try await server.logIn(customer)
                let orderID = try await Self.order(server, customer)
                let intentID = try await customer.call("ORDER.CHECKOUT", "\(orderID)").json()["payment_intent"] as! String
                _ = try await customer.call("ORDER.CANCEL", "\(orderID)")
                #expect(try await StandInProcessor.deliver(processor.succeededEvent(intentID), to: http) == 200)
                try await Self.eventually("the refund") { try await server.stockroom.payments.payment(orderID: Int64(orderID))?.status == .refunded }
                #expect(try await Self.status(server, orderID) == "cancelled")
                #expect(try await Self.eventTypes(server, orderID) == ["order.placed", "order.cancelled"], "never paid")
                #expect(processor.refundCount == 1)
            }
        }
    }

    @Test func aPaymentThroughTheProcessorMailsTheConfirmationAndShippingMailsTheNotice() async throws {
        try await SMTPSink.with { sink, _ in
            try await Self.withPayments(mailRelay: sink.port) { server, processor in
                let http = try #require(server.operationsPort)
                try await server.client { (customer: TestClient) async throws -> Void in
                    let me = try await server.logIn(customer)
                    let orderID = try await Self.order(server, customer)
                    let intentID = try await customer.call("ORDER.CHECKOUT", "\(orderID)").json()["payment_intent"] as! String
                    #expect(sink.messages.isEmpty, "nothing before the money arrives")
                    #expect(try await StandInProcessor.deliver(processor.succeededEvent(intentID), to: http) == 200)
                    try await Self.eventually("the confirmation") { sink.messages.count == 1 }
                    #expect(sink.messages.first?["rcpt_tos"] as? [String] == [me.email])
                    #expect(sink.messages.first?["subject"] as? String == "Order \(orderID) confirmed")
                    #expect((sink.messages.first?["body"] as? String)?.contains("Total: EUR 25.00") == true)
                    try await server.client { (admin: TestClient) async throws -> Void in
                        try await server.logIn(admin, admin: true)
                        #expect(try await admin.call("ORDER.SHIP", "\(orderID)").json()["status"] as? String == "shipped")
                    }
                    try await Self.eventually("the shipping notice") { sink.messages.count == 2 }
                    #expect(sink.messages.last?["subject"] as? String == "Order \(orderID) has shipped")
                    // Recorded just after the relay's answer, which the sink saw first.
                    let jobs = JobRepository(pool: server.stockroom.pool)
                    try await Self.eventually("both jobs done") {
                        let confirmation = try await jobs.job(kind: .orderConfirmation, orderID: Int64(orderID))?.state
                        let notice = try await jobs.job(kind: .shippingNotice, orderID: Int64(orderID))?.state
                        return confirmation == .done && notice == .done
                    }
                }
            }
        }
    }

    @Test func aManualPaymentIsNotRefundedThroughTheProcessor() async throws {
        try await Self.withPayments { server, processor in
            try await server.client { (customer: TestClient) async throws -> Void in
                try await server.logIn(customer)
                let orderID = try await Self.order(server, customer)
                #expect(try await server.payByHand(orderID).json()["status"] as? String == "paid")
                _ = try await customer.call("ORDER.CANCEL", "\(orderID)")
                let jobs = try await server.stockroom.pool.query("SELECT kind FROM jobs WHERE order_id = \(Int64(orderID)) ORDER BY id").map { try $0[0, as: String.self] }
                #expect(jobs == ["mail.order_confirmation"], "a confirmation, and no refund: the money never went through the processor")
                #expect(processor.requests.isEmpty)
            }
        }
    }
}

/// The processor's signature, without I/O.
@Suite struct ProcessorSignatureTests {
    let secret = "whsec_test"
    let body = Array(#"{"id":"evt_1"}"#.utf8)

    @Test func aSignatureVerifiesWithinTheTolerance() throws {
        let header = ProcessorSignature.header(body: body, secret: secret, timestamp: 1_000_000)
        try ProcessorSignature.verify(header: header, body: body, secret: secret, now: 1_000_300)
        try ProcessorSignature.verify(header: header, body: body, secret: secret, now: 999_700)
        #expect(throws: ProcessorSignature.Failure.stale) { try ProcessorSignature.verify(header: header, body: body, secret: secret, now: 1_000_301) }
    }

    @Test func anyV1OfSeveralWillDoAndOthersAreIgnored() throws {
        let good = ProcessorSignature.header(body: body, secret: secret, timestamp: 5).split(separator: ",")[1]
        let header = "t=5, v0=abc, v1=\(String(repeating: "0", count: 64)),\(good),scheme=x"
        try ProcessorSignature.verify(header: header, body: body, secret: secret, now: 5)
    }

    @Test func forgedMalformedAndTamperedAreRefused() {
        let header = ProcessorSignature.header(body: body, secret: secret, timestamp: 5)
        #expect(throws: ProcessorSignature.Failure.mismatch) { try ProcessorSignature.verify(header: header, body: body + [0x20], secret: secret, now: 5) }
        #expect(throws: ProcessorSignature.Failure.mismatch) { try ProcessorSignature.verify(header: header, body: body, secret: "whsec_other", now: 5) }
        for bad in [nil, "", "t=5", "v1=" + String(repeating: "a", count: 64), "t=x,v1=00", "t=5,v1=zz", String(repeating: "t=5,", count: 2000)] {
            #expect(throws: ProcessorSignature.Failure.malformed) { try ProcessorSignature.verify(header: bad, body: body, secret: secret, now: 5) }
        }
    }

    @Test func formEncodingKeepsStripesBracketKeysReadable() {
        #expect(PaymentProcessor.formEncoded([("metadata[order_id]", "7"), ("currency", "eur"), ("note", "a b&c=d/é")])
            == "metadata%5Border_id%5D=7&currency=eur&note=a%20b%26c%3Dd%2F%C3%A9")
        #expect(StandInProcessor.parseForm(PaymentProcessor.formEncoded([("metadata[order_id]", "7")])) == ["metadata[order_id]": "7"])
    }
}
