import Foundation
import LibPQ
import Testing

@Suite("Pipelines, notifications, COPY, cancellation")
struct ConnectionFeatureTests {
    @Test func pipelineReturnsResultsInOrderAndIsolatesAFailure() async throws {
        try await TestDatabase.withSchema { connection in
            try await connection.query("CREATE TABLE t (n int PRIMARY KEY)")
            let results = try await connection.pipeline([
                "INSERT INTO t VALUES (1)",
                "SELECT \(2) AS v",
                "SELECT 1 / \(0)",
                "INSERT INTO t VALUES (1)",
                "SELECT \(5) AS v",
                "SELEC broken syntax",
                "INSERT INTO t VALUES (7)",
            ])
            #expect(results.count == 7)
            #expect(try results[1].get().scalar(Int.self) == 2)
            #expect(results[2].failure?.sqlState == .divisionByZero)
            #expect(results[3].failure?.sqlState == .uniqueViolation)
            #expect(try results[4].get().scalar(Int.self) == 5)
            #expect(results[5].failure?.sqlState == .syntaxError)
            #expect((try? results[6].get().affectedRows) == 1)
            let stored = try await connection.query("SELECT n FROM t ORDER BY n").map { try $0[0, as: Int.self] }
            #expect(stored == [1, 7])
            // The connection is back to normal afterwards, cached statements included.
            let again = try await connection.pipeline(["SELECT \(2) AS v", "SELECT \(3) AS v"])
            #expect(try again.map { try $0.get().scalar(Int.self) } == [2, 3])
            #expect(try await connection.query("SELECT 9").scalar(Int.self) == 9)
        }
    }

    @Test func pipelineTransactionCommitsAllOrNothing() async throws {
        try await TestDatabase.withSchema { connection in
            try await connection.query("CREATE TABLE t (n int PRIMARY KEY)")
            let fresh: PostgresQuery = "SELECT count(*) FROM t WHERE n > \(0)"  // prepared within the failing one
            let failure = await #expect(throws: PostgresError.self) {
                try await connection.pipelineTransaction([
                    "INSERT INTO t VALUES (\(1))",
                    fresh,
                    "INSERT INTO t VALUES (\(1))",
                    "INSERT INTO t VALUES (\(3))",
                ])
            }
            #expect(failure?.sqlState == .uniqueViolation, "the first failure is the one thrown")
            #expect(try await connection.query("SELECT count(*) FROM t").scalar(Int.self) == 0, "nothing kept")
            // A statement prepared before the failure is still there for the cache to reuse.
            #expect(try await connection.query(fresh).scalar(Int.self) == 0)

            let rows = try await connection.pipelineTransaction([
                "SELECT set_config('plan_cache_mode', 'force_generic_plan', true)",
                "INSERT INTO t VALUES (\(1)), (\(2))",
                "SELECT current_setting('plan_cache_mode') AS mode, count(*) AS n FROM t",
            ])
            #expect(rows.count == 3)
            #expect(try rows[2][0]["mode", as: String.self] == "force_generic_plan")
            #expect(try rows[2][0]["n", as: Int.self] == 2)
            // The local setting ended with the transaction; what it wrote was committed.
            #expect(try await connection.query("SELECT current_setting('plan_cache_mode')").scalar(String.self) == "auto")
            #expect(try await connection.query("SELECT count(*) FROM t").scalar(Int.self) == 2)
            await #expect(throws: PostgresError.self) {
                try await connection.pipelineTransaction(["SELECT \("not an int")::int"])
            }
            #expect(try await connection.query("SELECT 9").scalar(Int.self) == 9)
        }
    }

    @Test func largePipelineDoesNotDeadlock() async throws {
        try await TestDatabase.withSchema { connection in
            let payload = String(repeating: "x", count: 4096)
            let queries: [PostgresQuery] = (0..<2000).map { "SELECT \($0)::int8 AS n, \(payload) AS p" }
            let results = try await connection.pipeline(queries)
            #expect(try results.map { try $0.get()[0]["n", as: Int.self] } == Array(0..<2000))
            // One sync at the end: libpq alone decides when to send, 8 MB each way.
            let together = try await connection.pipelineTransaction(queries)
            #expect(try together.map { try $0[0]["n", as: Int.self] } == Array(0..<2000))
        }
    }

    @Test func notificationsAreDelivered() async throws {
        try await TestDatabase.withSchema { listener in
            let channel = "orders_\(UInt32.random(in: 0...UInt32.max))"
            let stream = try await listener.notifications(on: channel)
            let sender = try await PostgresConnection.connect(TestDatabase.url)
            try await sender.query("SELECT pg_notify(\(channel), 'first')")
            try await sender.query("SELECT pg_notify(\(channel), \("second ✓"))")
            var received: [PostgresNotification] = []
            for try await notification in stream {
                received.append(notification)
                if received.count == 2 { break }
            }
            #expect(received.map(\.payload) == ["first", "second ✓"])
            #expect(received.allSatisfy { $0.channel == channel && $0.senderPID == sender.backendPID })
            // The listening connection still runs statements.
            #expect(try await listener.query("SELECT 1").scalar(Int.self) == 1)
            await sender.close()
        }
    }

    @Test func copyLoadsOneHundredThousandRows() async throws {
        try await TestDatabase.withSchema { connection in
            try await connection.query("CREATE TABLE products (id bigint PRIMARY KEY, sku text NOT NULL, price numeric, note text)")
            let copied = try await connection.copyFrom(table: "products", columns: ["id", "sku", "price", "note"]) { rows in
                for id in 0..<100_000 {
                    try rows.append(id, "SKU-\(id)", Decimal(id) / 100, id.isMultiple(of: 10) ? nil : "n\(id)" as String?)
                }
            }
            #expect(copied == 100_000)
            let summary = try await connection.query("SELECT count(*), sum(id)::int8, count(note), max(price) FROM products")
            #expect(try summary[0][0, as: Int.self] == 100_000)
            #expect(try summary[0][1, as: Int.self] == 4_999_950_000)
            #expect(try summary[0][2, as: Int.self] == 90_000)
            #expect(try summary[0][3, as: Decimal.self] == Decimal(string: "999.99"))
        }
    }

    @Test func aFailedCopyLoadsNothing() async throws {
        struct Stop: Error {}
        try await TestDatabase.withSchema { connection in
            try await connection.query("CREATE TABLE t (n int NOT NULL)")
            await #expect(throws: Stop.self) {
                try await connection.copyFrom(table: "t", columns: ["n"]) { rows in
                    for n in 0..<10_000 { try rows.append(Int32(n)) }
                    throw Stop()
                }
            }
            let serverSide = await #expect(throws: PostgresError.self) {
                try await connection.copyFrom(table: "t", columns: ["n"]) { rows in
                    try rows.append(Int32(1))
                    try rows.append(Int32?.none)
                }
            }
            #expect(serverSide?.sqlState == .notNullViolation)
            let arity = await #expect(throws: PostgresError.self) {
                try await connection.copyFrom(table: "t", columns: ["n"]) { rows in
                    try rows.append(Int32(1), "extra")
                }
            }
            #expect(arity?.code == .encoding)
            #expect(try await connection.query("SELECT count(*) FROM t").scalar(Int.self) == 0)
        }
    }

    @Test func copyThroughSimpleQueryFailsAndLeavesTheConnectionUsable() async throws {
        try await TestDatabase.withSchema { connection in
            try await connection.query("CREATE TABLE t (n int)")
            try await connection.query("INSERT INTO t VALUES (1), (2)")
            let copyIn = await #expect(throws: PostgresError.self) {
                try await connection.simpleQuery(unsafeSQL: "SELECT 1; COPY t FROM STDIN; INSERT INTO t VALUES (3)")
            }
            #expect(copyIn?.code == .unsupported)
            #expect(copyIn?.statementIndex == 1)
            #expect(copyIn?.message == "COPY cannot run as a statement, which has no way to send or receive its data; use copyFrom to load rows")
            // The server aborted the COPY and skipped the rest of the text.
            #expect(try await connection.query("SELECT count(*) FROM t").scalar(Int.self) == 2)

            let copyOut = await #expect(throws: PostgresError.self) {
                try await connection.simpleQuery(unsafeSQL: "COPY t TO STDOUT")
            }
            #expect(copyOut?.code == .unsupported)
            #expect(copyOut?.statementIndex == 0)
            #expect(try await connection.simpleQuery(unsafeSQL: "SELECT sum(n) FROM t").scalar(Int.self) == 3)

            // A COPY inside a script's own transaction aborts it; ROLLBACK recovers.
            await #expect(throws: PostgresError.self) {
                try await connection.simpleQuery(unsafeSQL: "BEGIN; INSERT INTO t VALUES (9); COPY t FROM STDIN")
            }
            try await connection.simpleQuery(unsafeSQL: "ROLLBACK")
            #expect(try await connection.query("SELECT count(*) FROM t").scalar(Int.self) == 2)
        }
    }

    @Test func copyThroughQueryFailsAndLeavesTheConnectionUsable() async throws {
        try await TestDatabase.withSchema { connection in
            try await connection.query("CREATE TABLE t (n int)")
            try await connection.query("INSERT INTO t VALUES (1), (2)")
            for sql: PostgresQuery in ["COPY t FROM STDIN", "COPY t TO STDOUT"] {
                let refused = await #expect(throws: PostgresError.self) { try await connection.query(sql) }
                #expect(refused?.code == .unsupported)
                #expect(refused?.message == "COPY cannot run as a statement, which has no way to send or receive its data; use copyFrom to load rows")
                #expect(try await connection.query("SELECT count(*) FROM t").scalar(Int.self) == 2)
            }
        }
    }

    @Test func cancellingTheTaskCancelsTheQueryOnTheServer() async throws {
        try await TestDatabase.withSchema { connection in
            let clock = ContinuousClock()
            let start = clock.now
            let task = Task { try await connection.query("SELECT pg_sleep(30)") }
            try await Task.sleep(for: .milliseconds(200))
            task.cancel()
            await #expect(throws: CancellationError.self) { try await task.value }
            #expect(clock.now - start < .seconds(5))
            #expect(try await connection.query("SELECT 1").scalar(Int.self) == 1)
        }
    }

    @Test func perQueryTimeout() async throws {
        try await TestDatabase.withSchema { connection in
            let clock = ContinuousClock()
            let start = clock.now
            let error = await #expect(throws: PostgresError.self) {
                try await connection.query("SELECT pg_sleep(30)", timeout: .milliseconds(150))
            }
            #expect(error?.code == .timeout)
            #expect(error?.sqlState == .queryCanceled)
            #expect(clock.now - start < .seconds(5))
            let after = try await connection.query("SELECT 1", timeout: .seconds(5))
            #expect(try after.scalar(Int.self) == 1)
        }
    }

    @Test func connectionErrorsNameTheTargetButNeverThePassword() async throws {
        let error = await #expect(throws: PostgresError.self) {
            _ = try await PostgresConnection.connect("postgres://stockroom:TopSecret123@127.0.0.1:1/shop_db")
        }
        #expect(error?.code == .connection)
        let text = error.map { String(reflecting: $0) } ?? ""
        #expect(text.contains("host=127.0.0.1"))
        #expect(text.contains("port=1"))
        #expect(text.contains("dbname=shop_db"))
        #expect(!text.contains("TopSecret123"))

        let wrongPassword = await #expect(throws: PostgresError.self) {
            _ = try await PostgresConnection.connect(TestDatabase.url.replacingOccurrences(of: "stockroom:stockroom@", with: "stockroom:WrongPass99@"))
        }
        #expect(wrongPassword.map { String(reflecting: $0) }?.contains("WrongPass99") == false)
        #expect(wrongPassword.map { String(reflecting: $0) }?.contains("password authentication failed") == true)
    }

    @Test func multiHostURLsAndSessionAttributesPassThroughToLibpq() async throws {
        // The first host refuses; libpq moves on to the second.
        let url = TestDatabase.url
            .replacingOccurrences(of: "@127.0.0.1:", with: "@127.0.0.1:1,127.0.0.1:")
        let connection = try await PostgresConnection.connect(url + (url.contains("?") ? "&" : "?") + "target_session_attrs=read-write")
        #expect(try await connection.query("SELECT 1").scalar(Int.self) == 1)
        await connection.close()
        let closed = await #expect(throws: PostgresError.self) { try await connection.query("SELECT 1") }
        #expect(closed?.code == .closed)
    }

    @Test func statementCacheSurvivesDiscardAndEvicts() async throws {
        var configuration = PostgresConnection.Configuration(TestDatabase.url)
        configuration.statementCacheCapacity = 2
        let connection = try await PostgresConnection.connect(configuration)
        for n in 0..<5 {
            #expect(try await connection.query("SELECT \(n)::int8 + \(unsafeRaw: String(n % 3))").scalar(Int.self) == n + n % 3)
        }
        // Counting prepares the count itself and evicts one more; count again to see
        // the cache at rest.
        try await connection.query("SELECT count(*) FROM pg_prepared_statements")
        let prepared = try await connection.query("SELECT count(*) FROM pg_prepared_statements").scalar(Int.self)
        #expect(prepared == 2)
        try await connection.simpleQuery(unsafeSQL: "DISCARD ALL")
        #expect(try await connection.query("SELECT \(1)::int8 + 1").scalar(Int.self) == 2)
        await connection.close()
    }

    /// A migration that changes the types a cached statement returns makes the server
    /// refuse its old plan on every call until it is prepared again: the service must
    /// not keep failing until restarted.
    @Test func cachedStatementsOutliveASchemaChangeToTheirResult() async throws {
        try await TestDatabase.withSchema { connection in
            try await connection.query("CREATE TABLE t (n int)")
            try await connection.query("INSERT INTO t VALUES (1)")
            // One statement per path, each prepared before the change.
            let single: PostgresQuery = "SELECT n AS single FROM t WHERE n > \(0)"
            let together: PostgresQuery = "SELECT n AS together FROM t WHERE n > \(0)"
            let apart: PostgresQuery = "SELECT n AS apart FROM t WHERE n > \(0)"
            let inTransaction: PostgresQuery = "SELECT n AS in_transaction FROM t WHERE n > \(0)"
            for query in [single, together, apart, inTransaction] { #expect(try await connection.query(query).scalar(Int.self) == 1) }

            try await connection.query("ALTER TABLE t ALTER COLUMN n TYPE bigint")
            // Each path on its own: one statement found stale must not re-prepare the rest.

            // Nothing was kept from the refused run: the insert happens once.
            let rows = try await connection.pipelineTransaction([together, "INSERT INTO t VALUES (\(2))"])
            #expect(try rows[0].scalar(Int.self) == 1)
            #expect(try await connection.query("SELECT count(*) FROM t").scalar(Int.self) == 2)
            // Independent statements cannot be re-run in order: one failure, then fine.
            let refused = try await connection.pipeline([apart])
            #expect(refused[0].failure?.sqlState == .featureNotSupported)
            #expect(try await connection.pipeline([apart])[0].get().count == 2)
            // Within a transaction the failure stands, but the next use prepares it anew.
            let aborted = await #expect(throws: PostgresError.self) {
                try await connection.withTransaction { connection in try await connection.query(inTransaction) }
            }
            #expect(aborted?.sqlState == .featureNotSupported)
            #expect(try await connection.query(inTransaction).count == 2)
            #expect(try await connection.query(single).count == 2, "retried, re-prepared")
            // The stale statements were deallocated, not left on the server.
            let prepared = try await connection.query("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'SELECT n AS %'")
            #expect(try prepared.scalar(Int.self) == 4)
        }
    }

    @Test func statementsThatDifferInBytesAreDifferentStatements() async throws {
        let connection = try await PostgresConnection.connect(TestDatabase.url)
        // Equal as Swift Strings (canonically equivalent), different to the server: the
        // second must not run the statement prepared for the first.
        let composed = "SELECT 'caf\u{E9}'::text"
        let decomposed = "SELECT 'cafe\u{301}'::text"
        #expect(composed == decomposed)
        for _ in 0..<2 {
            let first = try await connection.query("\(unsafeRaw: composed)").scalar(String.self)
            let second = try await connection.query("\(unsafeRaw: decomposed)").scalar(String.self)
            #expect(Array(first.utf8) == Array("caf\u{E9}".utf8))
            #expect(Array(second.utf8) == Array("cafe\u{301}".utf8))
        }
        await connection.close()
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
