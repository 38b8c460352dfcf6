import Foundation
import Glibc
import LibPQ
import NIOPosix
import Testing

/// Faults of the database as a client of the service meets them: a lock held elsewhere,
/// a database that stops answering, a connection that breaks at COMMIT, and two requests
/// racing with one idempotency key. Each against the real PostgreSQL, with the server's
/// answer and how long it took asserted. (Crashes of the service or of PostgreSQL in the
/// middle of a storm of orders are in scripts/fault-storm.py, run by `make test` too.)
@Suite("Faults: time limits, frozen databases, broken commits, racing keys", .serialized)
struct FaultTests {
    /// Event loops of their own, as AttackTests have: the bystanders measure this
    /// server, not the load other suites put on the shared loops.
    static let loops = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    /// Short limits, so that each fault resolves quickly.
    static func shortLimits(_ configuration: inout PostgresPool.Configuration) {
        configuration.statementTimeout = .seconds(2)
        configuration.lockTimeout = .milliseconds(500)
        configuration.operationTimeout = .milliseconds(800)
        configuration.connection.cancelGrace = .milliseconds(500)
    }

    /// The short limits, with the pool reaching PostgreSQL through `proxy`.
    static func shortLimits(through proxy: TCPProxy) -> (inout PostgresPool.Configuration) -> Void {
        { configuration in
            shortLimits(&configuration)
            configuration.connection.connectionString = proxy.url(replacing: configuration.connection.connectionString)
        }
    }

    /// A lock timeout longer than the bystander's bound: a bystander stuck behind the
    /// victims (for a pool connection, say) would take at least that long.
    static func lockLimits(_ configuration: inout PostgresPool.Configuration) {
        configuration.statementTimeout = .seconds(6)
        configuration.lockTimeout = .seconds(3)
        configuration.operationTimeout = .seconds(7)
    }

    @Test func aLockHeldElsewhereEndsInTimeoutAndBystandersAreServed() async throws {
        try await TestServer.with(eventLoops: Self.loops, database: Self.lockLimits) { server in
            let product = try await server.product(stock: 5)
            let customer = try await server.register()
            let holder = try await PostgresConnection.connect(server.databaseURL)
            try await holder.query("BEGIN")
            try await holder.query("LOCK products")
            try await Bystander.watching(server, "a lock held on products") {
                try await server.client { (reader: TestClient) async throws -> Void in
                    try await server.client { (other: TestClient) async throws -> Void in
                        try await server.logIn(other, as: customer)
                        // Victims: lookups and an order, each waiting on the lock.
                        let start = ContinuousClock.now
                        try await reader.send(TestClient.resp(["PRODUCT.GET", "\(product)"]) + TestClient.resp(["PRODUCT.GET", "\(product)"]))
                        try await other.send(TestClient.resp(["ORDER.PLACE", #"{"lines":[{"product_id":\#(product),"quantity":1}]}"#]))
                        // A bystander that needs no lock on products is served meanwhile.
                        try await server.client { (bystander: TestClient) async throws -> Void in
                            try await server.logIn(bystander, as: customer)
                            let listed = ContinuousClock.now
                            #expect(try await bystander.call("ORDER.LIST").json()["items"] as? [Any] != nil)
                            #expect(ContinuousClock.now - listed < .seconds(1.5))
                        }
                        for _ in 0..<2 {
                            let reply = try await reader.reply()
                            #expect(reply.errorCode == "TIMEOUT", "\(reply)")
                            #expect(reply.description.contains("request id"))
                        }
                        #expect(try await other.reply().errorCode == "TIMEOUT")
                        // lock_timeout 3 s, with room for a loaded machine.
                        #expect(ContinuousClock.now - start < .seconds(6))
                    }
                }
            }
            try await holder.query("ROLLBACK")
            await holder.close()
            // Nothing was half-written, and everything works again.
            try await server.client { (c: TestClient) async throws -> Void in
                #expect(try await c.call("PRODUCT.GET", "\(product)").json()["stock"] as? Int == 5)
            }
        }
    }

    /// Every backend of the service frozen with SIGSTOP: the database accepts bytes and
    /// never answers, not even a cancel. The service's own deadline must answer.
    @Test func aDatabaseThatStopsAnsweringEndsInTimeoutThenRecovers() async throws {
        try await TestServer.with(eventLoops: Self.loops, database: Self.shortLimits, poolSize: 2) { server in
            let product = try await server.product(stock: 5)
            let watcher = try await PostgresConnection.connect(TestServer.url)
            let pids = try await watcher.query("SELECT pid FROM pg_stat_activity WHERE datname = \(server.databaseName) AND pid <> pg_backend_pid()").map { try $0[0, as: Int32.self] }
            #expect(!pids.isEmpty)
            for pid in pids { kill(pid, SIGSTOP) }
            defer { for pid in pids { kill(pid, SIGCONT) } }
            try await Bystander.watching(server, "a frozen database") {
                try await server.client { (c: TestClient) async throws -> Void in
                    let start = ContinuousClock.now
                    let reply = try await c.call("PRODUCT.GET", "\(product)")
                    let elapsed = ContinuousClock.now - start
                    #expect(reply.errorCode == "TIMEOUT", "\(reply)")
                    // Deadline 800 ms + grace 500 ms, with room for a loaded machine.
                    #expect(elapsed < .seconds(3), "took \(elapsed)")
                }
            }
            for pid in pids { kill(pid, SIGCONT) }
            // Frozen connections were discarded; the service answers again by itself.
            try await server.client { (c: TestClient) async throws -> Void in
                #expect(try await Self.stockOnceServed(c, product) == 5)
            }
            await watcher.close()
        }
    }

    @Test func aBlackHoledNetworkEndsInTimeoutThenRecovers() async throws {
        let proxy = try TCPProxy(inFrontOf: TestServer.url)
        defer { proxy.stop() }
        try await TestServer.with(eventLoops: Self.loops, database: Self.shortLimits(through: proxy)) { server in
            let product = try await server.product(stock: 5)
            proxy.setBlackHole(true)
            try await server.client { (c: TestClient) async throws -> Void in
                let start = ContinuousClock.now
                #expect(try await c.call("PRODUCT.GET", "\(product)").errorCode == "TIMEOUT")
                #expect(ContinuousClock.now - start < .seconds(3))
                proxy.setBlackHole(false)
                #expect(try await Self.stockOnceServed(c, product) == 5)
            }
        }
    }

    /// The product's stock, asking again (five times at most) while the service still
    /// answers with an error: connections that went bad are replaced one request at a time.
    static func stockOnceServed(_ client: TestClient, _ product: Int) async throws -> Int? {
        for _ in 0..<5 {
            if let stock = try? await client.call("PRODUCT.GET", "\(product)").json()["stock"] as? Int { return stock }
        }
        return nil
    }

    /// Makes COMMIT on orders slow: a deferred constraint trigger sleeps at commit time,
    /// before the commit record is written — a window to break the connection in.
    static func slowCommits(_ server: TestServer, seconds: Double) async throws {
        let connection = try await PostgresConnection.connect(server.databaseURL)
        try await connection.simpleQuery(unsafeSQL: """
            CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_sleep(\(seconds)); RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON orders DEFERRABLE INITIALLY DEFERRED
                FOR EACH ROW EXECUTE FUNCTION slow_commit();
            """)
        await connection.close()
    }

    /// The backend sleeping in the commit trigger.
    static func committingBackend(_ server: TestServer, watcher: PostgresConnection) async throws -> Int32? {
        for _ in 0..<300 {
            let rows = try await watcher.query("SELECT pid FROM pg_stat_activity WHERE datname = \(server.databaseName) AND wait_event = 'PgSleep'")
            if let row = rows.first { return try row[0, as: Int32.self] }
            try await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    static func orderCount(_ server: TestServer, watcher: PostgresConnection) async throws -> (orders: Int, stock: Int) {
        let url = server.databaseURL
        let connection = try await PostgresConnection.connect(url)
        defer { Task { await connection.close() } }
        let orders = try await connection.query("SELECT count(*) FROM orders")[0][0, as: Int.self]
        let stock = try await connection.query("SELECT sum(stock) FROM products")[0][0, as: Int.self]
        return (orders, stock)
    }

    @Test func aCommitKilledOnTheServerIsReportedAsNotPlaced() async throws {
        try await TestServer.with(eventLoops: Self.loops, database: { $0.statementTimeout = .seconds(10) }) { server in
            let product = try await server.product(stock: 5)
            try await Self.slowCommits(server, seconds: 5)
            let watcher = try await PostgresConnection.connect(TestServer.url)
            try await server.client { (c: TestClient) async throws -> Void in
                try await server.logIn(c)
                try await c.send(TestClient.resp(["ORDER.PLACE", #"{"lines":[{"product_id":\#(product),"quantity":2}]}"#]))
                let pid = try #require(try await Self.committingBackend(server, watcher: watcher))
                try await watcher.query("SELECT pg_terminate_backend(\(pid))")
                let reply = try await c.reply()
                #expect(reply.errorCode == "UNAVAILABLE", "\(reply)")
            }
            let (orders, stock) = try await Self.orderCount(server, watcher: watcher)
            #expect(orders == 0)
            #expect(stock == 5)
            await watcher.close()
        }
    }

    @Test func aCommitThatWentThroughWhileTheLinkDroppedIsReportedAsPlaced() async throws {
        let proxy = try TCPProxy(inFrontOf: TestServer.url)
        defer { proxy.stop() }
        try await TestServer.with(eventLoops: Self.loops, database: { configuration in
            configuration.statementTimeout = .seconds(10)
            configuration.connection.connectionString = proxy.url(replacing: configuration.connection.connectionString)
        }) { server in
            let product = try await server.product(stock: 5)
            try await Self.slowCommits(server, seconds: 0.5)
            let watcher = try await PostgresConnection.connect(TestServer.url)
            try await server.client { (c: TestClient) async throws -> Void in
                try await server.logIn(c)
                try await c.send(TestClient.resp(["ORDER.PLACE", #"{"lines":[{"product_id":\#(product),"quantity":2}]}"#]))
                _ = try #require(try await Self.committingBackend(server, watcher: watcher))
                // The link drops while the server commits; the commit goes through.
                proxy.cutAll()
                let order = try await c.reply().json()
                #expect(order["status"] as? String == "pending")
                #expect((order["lines"] as? [[String: Any]])?.first?["quantity"] as? Int == 2)
            }
            let (orders, stock) = try await Self.orderCount(server, watcher: watcher)
            #expect(orders == 1)
            #expect(stock == 3)
            await watcher.close()
        }
    }

    /// An order statement that sleeps while it runs, before the transaction's id is sent.
    static func slowStatements(_ server: TestServer, seconds: Double) async throws {
        let connection = try await PostgresConnection.connect(server.databaseURL)
        try await connection.simpleQuery(unsafeSQL: """
            CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_sleep(\(seconds)); RETURN NEW; END $$;
            CREATE TRIGGER slow_insert BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION slow_insert();
            """)
        await connection.close()
    }

    /// A partition while the order's statement still runs. The deadline passes, the
    /// cancel cannot get through, and the service cuts the connection: nothing of the
    /// answer, not even the transaction's id, came back. But the server has the whole
    /// round trip, its commit included, and places the order when the statement ends.
    /// Taken for "not placed" (-TIMEOUT, which says it was not made), a client retrying
    /// without a key would order twice. The service asks the server about the backend
    /// once it can reach it: without a key the client hears -INDOUBT; with one, it gets
    /// its order.
    @Test(arguments: [false, true])
    func anOrderCutAtItsDeadlineThatThenCommitsIsNeverReportedAsNotPlaced(keyed: Bool) async throws {
        let proxy = try TCPProxy(inFrontOf: TestServer.url)
        defer { proxy.stop() }
        try await TestServer.with(eventLoops: Self.loops, database: Self.shortLimits(through: proxy)) { server in
            let product = try await server.product(stock: 5)
            try await Self.slowStatements(server, seconds: 1.5)
            let watcher = try await PostgresConnection.connect(TestServer.url)
            try await server.client { (c: TestClient) async throws -> Void in
                try await server.logIn(c)
                let key = keyed ? #","idempotency_key":"partitioned-1""# : ""
                try await c.send(TestClient.resp(["ORDER.PLACE", #"{"lines":[{"product_id":\#(product),"quantity":2}]\#(key)}"#]))
                let pid = try #require(try await Self.committingBackend(server, watcher: watcher))
                proxy.setBlackHole(true)
                // The statement ends, and the order commits, behind the partition.
                for _ in 0..<300 {
                    if try await watcher.query("SELECT count(*) FROM pg_stat_activity WHERE pid = \(pid) AND wait_event = 'PgSleep'")[0][0, as: Int.self] == 0 { break }
                    try await Task.sleep(for: .milliseconds(10))
                }
                try await Task.sleep(for: .milliseconds(300))
                proxy.setBlackHole(false)
                let reply = try await c.reply()
                if keyed {
                    #expect(try reply.json()["status"] as? String == "pending", "\(reply)")
                } else {
                    #expect(reply.errorCode == "INDOUBT", "\(reply)")
                }
            }
            let (orders, stock) = try await Self.orderCount(server, watcher: watcher)
            #expect(orders == 1, "the server placed it behind the partition")
            #expect(stock == 3)
            await watcher.close()
        }
    }

    /// Two requests with one key for the last unit: both must get the one order — a
    /// client that retried must not be told its order failed.
    @Test func twoRequestsWithOneKeyForTheLastUnitBothGetTheOrder() async throws {
        try await TestServer.with(eventLoops: Self.loops) { server in
            let product = try await server.product(stock: 1)
            let customer = try await server.register()
            let watcher = try await PostgresConnection.connect(TestServer.url)
            // Hold the product's row, so both requests are inside their statements,
            // queued on its lock, when it is let go.
            let holder = try await PostgresConnection.connect(server.databaseURL)
            try await holder.query("BEGIN")
            try await holder.query("SELECT * FROM products WHERE id = \(Int64(product)) FOR UPDATE")
            try await server.client { (a: TestClient) async throws -> Void in
                try await server.client { (b: TestClient) async throws -> Void in
                    try await server.logIn(a, as: customer)
                    try await server.logIn(b, as: customer)
                    let place = TestClient.resp(["ORDER.PLACE", #"{"lines":[{"product_id":\#(product),"quantity":1}],"idempotency_key":"last-one"}"#])
                    try await a.send(place)
                    try await b.send(place)
                    for _ in 0..<300 {
                        let waiting = try await watcher.query("SELECT count(*) FROM pg_stat_activity WHERE datname = \(server.databaseName) AND wait_event_type = 'Lock'")[0][0, as: Int.self]
                        if waiting == 2 { break }
                        try await Task.sleep(for: .milliseconds(10))
                    }
                    try await holder.query("COMMIT")
                    let first = try await a.reply()
                    let second = try await b.reply()
                    let ids = [try first.json()["id"] as? Int, try second.json()["id"] as? Int]
                    #expect(ids[0] != nil && ids[0] == ids[1], "\(first) / \(second)")
                }
            }
            let (orders, stock) = try await Self.orderCount(server, watcher: watcher)
            #expect(orders == 1)
            #expect(stock == 0)
            await holder.close()
            await watcher.close()
        }
    }
}
