import Foundation
import Glibc
import LibPQ
import Testing

/// EVENTS.READ and Redis pub/sub over the protocol, with the outbox behind them.
@Suite("Events over the protocol: EVENTS.READ, SUBSCRIBE, PSUBSCRIBE")
struct EventServerTests {
    static func place(_ client: TestClient, _ product: Int, quantity: Int = 1) async throws -> [String: Any] {
        try await client.call("ORDER.PLACE", #"{"lines":[{"product_id":\#(product),"quantity":\#(quantity)}]}"#).json()
    }

    /// The next push or array, skipping nothing: a subscriber's next message.
    static func message(_ client: TestClient) async throws -> [TestReply] {
        switch try await client.reply() {
        case .array(let elements), .push(let elements): return elements
        case let other: throw TestClientError("expected a message, got \(other)")
        }
    }

    static func json(_ text: TestReply) throws -> [String: Any] {
        guard case .bulk(let body?) = text else { throw TestClientError("expected a bulk string, got \(text)") }
        return try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: Any]
    }

    @Test func eventsReadShowsACustomerTheirOwnOrdersAsOrderGetDoes() async throws {
        try await TestServer.with { server in
            let product = try await server.product(stock: 20)
            try await server.client { (ann: TestClient) async throws -> Void in
                try await server.logIn(ann)
                let order = try await Self.place(ann, product)
                let orderID = order["id"] as! Int
                try await server.payByHand(orderID)
                try await server.client { (bo: TestClient) async throws -> Void in
                    try await server.logIn(bo)
                    _ = try await Self.place(bo, product)
                    let page = try await ann.call("EVENTS.READ").json()
                    let items = page["items"] as! [[String: Any]]
                    #expect(items.map { $0["type"] as! String } == ["order.placed", "order.paid"])
                    #expect(items.allSatisfy { $0["subject_id"] as? Int == orderID })
                    // The data is the order as ORDER.GET shows it, at the time of the event.
                    let now = try await ann.call("ORDER.GET", "\(orderID)").json()
                    #expect(NSDictionary(dictionary: items[1]["data"] as! [String: Any]) == NSDictionary(dictionary: now))
                    #expect(NSDictionary(dictionary: items[0]["data"] as! [String: Any]) == NSDictionary(dictionary: order))
                    // Catching up after an id, a page at a time.
                    let first = items[0]["id"] as! Int
                    let after = try await ann.call("EVENTS.READ", "AFTER", "\(first)", "LIMIT", "1").json()
                    #expect((after["items"] as! [[String: Any]]).map { $0["type"] as! String } == ["order.paid"])
                    #expect(after["next"] as? Int == items[1]["id"] as? Int)
                    // Bo sees his own order only.
                    let bos = try await bo.call("EVENTS.READ").json()["items"] as! [[String: Any]]
                    #expect(bos.map { $0["type"] as! String } == ["order.placed"])
                }
            }
            try await server.client { (anonymous: TestClient) async throws -> Void in
                #expect(try await anonymous.call("EVENTS.READ").errorCode == "NOAUTH")
                #expect(try await anonymous.call("SUBSCRIBE", "order.placed").errorCode == "NOAUTH")
            }
        }
    }

    @Test func subscribersGetTheirEventsAndNoOneElses() async throws {
        try await TestServer.with { server in
            let product = try await server.product(stock: 7)
            let ann = try await server.register()
            let bo = try await server.register()
            try await server.client { (annListens: TestClient) async throws -> Void in
                try await server.logIn(annListens, as: ann)
                try await annListens.send(TestClient.resp(["SUBSCRIBE", "order.placed", "order.paid"]))
                #expect(try await Self.message(annListens) == [.bulk("subscribe"), .bulk("order.placed"), .integer(1)])
                #expect(try await Self.message(annListens) == [.bulk("subscribe"), .bulk("order.paid"), .integer(2)])
                // Subscribed over RESP2: only the pub/sub commands, PING and QUIT.
                #expect(try await annListens.call("ORDER.LIST").errorCode == "ERR")
                #expect(try await annListens.call("PING") == .array([.bulk("pong"), .bulk("")]))
                try await server.client { (boListens: TestClient) async throws -> Void in
                    try await server.logIn(boListens, as: bo)
                    #expect(try await boListens.call("PSUBSCRIBE", "order.*") == .array([.bulk("psubscribe"), .bulk("order.*"), .integer(1)]))
                    try await server.client { (admin: TestClient) async throws -> Void in
                        try await server.logIn(admin, admin: true)
                        #expect(try await admin.call("PSUBSCRIBE", "*") == .array([.bulk("psubscribe"), .bulk("*"), .integer(1)]))
                        try await server.client { (writer: TestClient) async throws -> Void in
                            try await server.logIn(writer, as: ann)
                            let annOrder = try await Self.place(writer, product, quantity: 2)  // stock 7 → 5: low
                            let annID = annOrder["id"] as! Int

                            let placed = try await Self.message(annListens)
                            #expect(placed.prefix(2) == [.bulk("message"), .bulk("order.placed")])
                            let event = try Self.json(placed[2])
                            #expect(event["type"] as? String == "order.placed" && event["user_id"] as? Int == ann.id)
                            #expect(NSDictionary(dictionary: event["data"] as! [String: Any]) == NSDictionary(dictionary: annOrder))

                            let seen = try await Self.message(admin)
                            #expect(seen.prefix(3) == [.bulk("pmessage"), .bulk("*"), .bulk("order.placed")])
                            let low = try await Self.message(admin)
                            #expect(low.prefix(3) == [.bulk("pmessage"), .bulk("*"), .bulk("product.low_stock")])
                            #expect(try Self.json(low[3])["low_stock_threshold"] as? Int == 5)

                            // Bo's first message is his own order: Ann's never reached him.
                            try await server.client { (boWrites: TestClient) async throws -> Void in
                                try await server.logIn(boWrites, as: bo)
                                let boOrder = try await Self.place(boWrites, product)
                                let boMessage = try await Self.message(boListens)
                                #expect(boMessage.prefix(3) == [.bulk("pmessage"), .bulk("order.*"), .bulk("order.placed")])
                                #expect(try (Self.json(boMessage[3])["data"] as! [String: Any])["id"] as? Int == boOrder["id"] as? Int)
                            }
                            // And Ann's next is her payment, not Bo's order.
                            try await server.payByHand(annID)
                            let paid = try await Self.message(annListens)
                            #expect(paid.prefix(2) == [.bulk("message"), .bulk("order.paid")])
                            #expect(try Self.json(paid[2])["subject_id"] as? Int == annID)
                        }
                    }
                }
                // Unsubscribing from everything leaves subscribe mode.
                try await annListens.send(TestClient.resp(["UNSUBSCRIBE"]))
                #expect(try await Self.message(annListens) == [.bulk("unsubscribe"), .bulk("order.paid"), .integer(1)])
                #expect(try await Self.message(annListens) == [.bulk("unsubscribe"), .bulk("order.placed"), .integer(0)])
                #expect(try await annListens.call("PING") == .simple("PONG"))
            }
        }
    }

    /// A login revoked while subscribed stops its deliveries, as it stops its commands.
    @Test func aRevokedLoginGetsNoMoreEvents() async throws {
        try await TestServer.with { server in
            let product = try await server.product(stock: 50)
            let ann = try await server.register()
            try await server.client { (annListens: TestClient) async throws -> Void in
                try await server.logIn(annListens, as: ann)
                #expect(try await annListens.call("SUBSCRIBE", "order.placed") == .array([.bulk("subscribe"), .bulk("order.placed"), .integer(1)]))
                try await server.client { (admin: TestClient) async throws -> Void in
                    try await server.logIn(admin, admin: true)
                    let place = #"{"lines":[{"product_id":\#(product),"quantity":1}],"user_id":\#(ann.id)}"#
                    // Before: Ann hears of the order placed for her.
                    let first = try await admin.call("ORDER.PLACE", place).json()
                    let heard = try await Self.message(annListens)
                    #expect(try Self.json(heard[2])["subject_id"] as? Int == first["id"] as? Int)
                    // After every session of hers is revoked: nothing more.
                    _ = try await admin.call("SESSION.REVOKEALL", "\(ann.id)")
                    try await server.client { (adminListens: TestClient) async throws -> Void in
                        try await server.logIn(adminListens, admin: true)
                        #expect(try await adminListens.call("SUBSCRIBE", "order.placed") == .array([.bulk("subscribe"), .bulk("order.placed"), .integer(1)]))
                        _ = try await admin.call("ORDER.PLACE", place)
                        // The admin hears it; by then Ann's connection has had it too.
                        _ = try await Self.message(adminListens)
                    }
                    try await Task.sleep(for: .milliseconds(300))
                    #expect(try await annListens.call("PING") == .array([.bulk("pong"), .bulk("")]), "an event reached a revoked login")
                }
            }
        }
    }

    @Test func resp3SubscribersGetPushesBetweenOrdinaryReplies() async throws {
        try await TestServer.with { server in
            let product = try await server.product(stock: 50)
            try await server.client { (client: TestClient) async throws -> Void in
                _ = try await client.call("HELLO", "3")
                let user = try await server.logIn(client)
                #expect(try await client.call("SUBSCRIBE", "order.placed") == .push([.bulk("subscribe"), .bulk("order.placed"), .integer(1)]))
                // Other commands still work in RESP3; the event follows the order's reply.
                let order = try await Self.place(client, product)
                guard case .push(let message) = try await client.reply() else { Issue.record("expected a push"); return }
                #expect(message.prefix(2) == [.bulk("message"), .bulk("order.placed")])
                #expect(try Self.json(message[2])["subject_id"] as? Int == order["id"] as? Int)
                #expect(try Self.json(message[2])["user_id"] as? Int == user.id)
            }
        }
    }

    @Test func subscriptionsAreBounded() async throws {
        try await TestServer.with { server in
            try await server.client { (client: TestClient) async throws -> Void in
                try await server.logIn(client)
                let many = (0..<65).map { "t\($0).x" }
                #expect(try await client.call(["SUBSCRIBE"] + many).errorCode == "ERR")
                #expect(try await client.call("SUBSCRIBE", String(repeating: "a", count: 129)).errorCode == "INVALID")
                #expect(try await client.call("PING") == .simple("PONG"), "a refused SUBSCRIBE subscribes to nothing")
            }
        }
    }

    /// An admin subscriber that stops reading while thousands of events flow is closed
    /// once a thousand events wait for it past what the socket took; a bystander is
    /// served meanwhile. The subscriber's receive buffer is 4 KB and the server's pending
    /// replies 64 KB, so that a few thousand events are enough.
    @Test func aSubscriberThatDoesNotReadIsClosed() async throws {
        try await TestServer.with(configure: { $0.maxPendingReplyBytes = 64 * 1024 }) { server in
            let product = try await server.product(stock: 50)
            try await server.client { (writer: TestClient) async throws -> Void in
                try await server.logIn(writer)
                _ = try await Self.place(writer, product)
            }
            let admin = try await server.register(admin: true)
            let slow = try RawSubscriber(port: server.port, email: admin.email, pattern: "order.*")
            defer { slow.close() }
            #expect(server.server.subscriberCount == 1)
            // 8,000 copies of the order's event, each about 700 bytes: more than the kernel's
            // buffers hold (about 1.6 MB here) and the 1,000 the server queues.
            let database = try await PostgresConnection.connect(server.databaseURL)
            try await database.query("INSERT INTO events (type, subject_id, user_id, history_id) SELECT type, subject_id, user_id, history_id FROM events, generate_series(1, 8000) WHERE type = 'order.placed'")
            await database.close()
            try await Bystander.watching(server, "a subscriber that does not read") {
                let deadline = ContinuousClock.now + .seconds(30)
                while server.server.subscriberCount > 0 && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(server.server.subscriberCount == 0, "the subscriber is still connected")
            }
            // What the buffers held, then the end of the stream: far less than 8,000 events.
            let bytes = try slow.readToEnd()
            #expect(bytes < 8000 * 700, "\(bytes) bytes")
        }
    }
}

/// A subscriber on a blocking socket with a small receive buffer, which reads only when
/// told to: the slow reader of the tests.
final class RawSubscriber: Sendable {
    let fd: Int32

    init(port: Int, email: String, pattern: String) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var size: Int32 = 4096
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in.loopback(port: UInt16(port))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestClientError("connect: \(errno)") }
        try send("AUTH \(email) password123\r\n")
        try expect("+OK\r\n")
        try send("PSUBSCRIBE \(pattern)\r\n")
        try expect(":1\r\n")
    }

    private func send(_ text: String) throws {
        let sent = text.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
        guard sent == text.utf8.count else { throw TestClientError("write: \(errno)") }
    }

    /// Reads until `suffix` ends what was read.
    private func expect(_ suffix: String) throws {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while !received.reversed().starts(with: Array(suffix.utf8).reversed()) {
            let count = read(fd, &buffer, buffer.count)
            guard count > 0 else { throw TestClientError("read: \(errno), got \(String(decoding: received, as: UTF8.self))") }
            received += buffer[0..<count]
        }
    }

    /// Every byte until the server closes the connection.
    func readToEnd() throws -> Int {
        var total = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count == 0 || (count < 0 && errno == ECONNRESET) { return total }
            guard count > 0 else { throw TestClientError("read: \(errno) after \(total) bytes") }
            total += count
        }
    }

    func close() { _ = Glibc.close(fd) }
}
