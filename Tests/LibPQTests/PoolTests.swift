import LibPQ
import Testing

@Suite("Connection pool against the server")
struct PoolTests {
    @Test func exhaustionFailsClearlyAndRecoversWhenAConnectionReturns() async throws {
        let pool = PostgresPool(configuration: .init(connection: .init(TestDatabase.url), maxConnections: 1, acquireTimeout: .milliseconds(200)))
        // Open the one connection first: on a loaded machine, connecting alone can take
        // longer than the 200 ms this test is about, and the holder must not time out.
        var attempts = 0
        while (try? await pool.query("SELECT 1")) == nil, attempts < 50 { attempts += 1 }
        #expect(pool.statistics.open == 1)
        let held = Gate()
        let release = Gate()
        async let holder: Void = pool.withConnection { connection in
            try await connection.query("SELECT 1")
            await held.arrive(expected: 2)
            await release.arrive(expected: 2)
        }
        await held.arrive(expected: 2)
        let clock = ContinuousClock()
        let start = clock.now
        let error = await #expect(throws: PostgresError.self) {
            try await pool.query("SELECT 1")
        }
        #expect(error?.code == .poolExhausted)
        #expect(error?.message.contains("200") == true)
        // Well under the 5 s default, with room for a loaded machine (a 200 ms timer
        // fired after 2.1 s once during a full parallel run).
        #expect(clock.now - start < .seconds(4))
        await release.arrive(expected: 2)
        try await holder
        #expect(try await pool.query("SELECT 2").scalar(Int.self) == 2)
        #expect(pool.statistics.open == 1)
        await pool.close()
    }

    @Test func callersWaitingForAConnectionAreCounted() async throws {
        let pool = PostgresPool(configuration: .init(connection: .init(TestDatabase.url), maxConnections: 1, acquireTimeout: .seconds(30)))
        let waiter = try await pool.withConnection { connection in
            try await connection.query("SELECT 1")
            let waiter = Task { try await pool.query("SELECT 2").scalar(Int.self) }
            var waiting = 0
            for _ in 0..<500 where waiting == 0 {
                waiting = pool.statistics.waiting
                if waiting == 0 { try await Task.sleep(for: .milliseconds(10)) }
            }
            #expect(waiting == 1)
            #expect(pool.statistics.leased == 1)
            #expect(pool.statistics.open == 1)
            return waiter
        }
        #expect(try await waiter.value == 2)
        #expect(pool.statistics.waiting == 0)
        #expect(pool.statistics.leased == 0)
        await pool.close()
    }

    @Test func waitersAreServedInTurnUpToTheLimit() async throws {
        // A fresh-clone run under the whole suite once found all three connections busy
        // for the 10 s this allowed (thirty 10 ms queries); not reproduced since.
        let pool = PostgresPool(configuration: .init(connection: .init(TestDatabase.url), maxConnections: 3, acquireTimeout: .seconds(30)))
        let results = try await withThrowingTaskGroup(of: Int.self) { group in
            for n in 0..<30 {
                group.addTask { try await pool.query("SELECT \(n) FROM pg_sleep(0.01)").scalar(Int.self) }
            }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(results.sorted() == Array(0..<30))
        #expect(pool.statistics.open <= 3)
        await pool.close()
        #expect(pool.statistics.open == 0)
        let closed = await #expect(throws: PostgresError.self) { try await pool.query("SELECT 1") }
        #expect(closed?.code == .closed)
    }

    @Test func recoversAfterTheServerTerminatesPooledConnections() async throws {
        let name = "pool-recovery-\(UInt32.random(in: 0...UInt32.max))"
        let conninfo = TestDatabase.url + (TestDatabase.url.contains("?") ? "&" : "?") + "application_name=\(name)"
        let pool = PostgresPool(configuration: .init(connection: .init(conninfo), maxConnections: 2))
        // Open both connections: each holds its own until both are leased at once.
        let bothLeased = Gate()
        async let a: Void = pool.withConnection { try await $0.query("SELECT 1"); await bothLeased.arrive(expected: 2) }
        async let b: Void = pool.withConnection { try await $0.query("SELECT 1"); await bothLeased.arrive(expected: 2) }
        _ = try await (a, b)
        #expect(pool.statistics.open == 2)

        let admin = try await PostgresConnection.connect(TestDatabase.url)
        let killed = try await admin.query("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = \(name)) AS k").scalar(Int.self)
        #expect(killed == 2)
        await admin.close()
        try await Task.sleep(for: .milliseconds(100))

        for n in 0..<6 {
            #expect(try await pool.query("SELECT \(n)").scalar(Int.self) == n)
        }
        await pool.close()
    }

    @Test func aConnectionLeftInATransactionIsNotReused() async throws {
        let pool = PostgresPool(configuration: .init(connection: .init(TestDatabase.url), maxConnections: 1))
        let firstPID = try await pool.withConnection { connection in
            try await connection.query("BEGIN")
            try await connection.query("SET LOCAL application_name = 'leftover'")
            return connection.backendPID
        }
        let secondPID = try await pool.withConnection { connection in
            let name = try await connection.query("SHOW application_name").scalar(String.self)
            #expect(name != "leftover", "not inside the old transaction")
            return connection.backendPID
        }
        #expect(firstPID != secondPID)
        await pool.close()
    }

    /// After a failover the old primary may come back as a standby; a session that lands
    /// there refuses writes with SQLSTATE 25006. Here the session turns read-only under
    /// the pool (as `default_transaction_read_only` or a hot standby reports it): the
    /// write fails as `.readOnlyServer`, and the pool replaces the connection rather than
    /// lend it again, so the next write goes through on a new session.
    @Test func aConnectionToAServerThatTurnedReadOnlyIsReplaced() async throws {
        try await TestDatabase.withSchema { _, conninfo in
            let pool = PostgresPool(configuration: .init(connection: .init(conninfo), maxConnections: 1))
            try await pool.query("CREATE TABLE writes (n int)")
            let firstPID = try await pool.withConnection { connection in
                try await connection.query("SET default_transaction_read_only = on")
                return connection.backendPID
            }
            let error = await #expect(throws: PostgresError.self) {
                try await pool.withConnection { connection in
                    #expect(connection.backendPID == firstPID, "the same session, still read-only")
                    try await connection.query("INSERT INTO writes VALUES (1)")
                }
            }
            #expect(error?.code == .readOnlyServer)
            #expect(error?.sqlState == .readOnlySQLTransaction)
            let secondPID = try await pool.withConnection { connection in
                try await connection.query("INSERT INTO writes VALUES (2)")
                return connection.backendPID
            }
            #expect(secondPID != firstPID)
            #expect(try await pool.query("SELECT n FROM writes").scalar(Int.self) == 2)
            await pool.close()
        }
    }

    /// The same through `write` (a pipeline whose errors come back as values): the
    /// refusal is known to be the server's only once the pipeline has been read to its
    /// end, where the server reports a setting changed by a reload.
    @Test func aWriteRefusedByAReadOnlyServerIsReadOnlyServerAndReplaced() async throws {
        try await TestDatabase.withSchema { _, conninfo in
            let pool = PostgresPool(configuration: .init(connection: .init(conninfo), maxConnections: 1))
            try await pool.query("CREATE TABLE writes (n int)")
            let firstPID = try await pool.withConnection { connection in
                try await connection.query("SET default_transaction_read_only = on")
                return connection.backendPID
            }
            let error = await #expect(throws: PostgresError.self) {
                try await pool.write("INSERT INTO writes VALUES (1)")
            }
            #expect(error?.code == .readOnlyServer)
            try await pool.write("INSERT INTO writes VALUES (2)")
            #expect(try await pool.withConnection { $0.backendPID } != firstPID)
            #expect(try await pool.query("SELECT n FROM writes").scalar(Int.self) == 2)
            await pool.close()
        }
    }

    /// A read-only transaction the caller asked for is the caller's business: the same
    /// SQLSTATE, on a server that takes writes, stays a plain server error and the
    /// connection is kept.
    @Test func aWriteInAReadOnlyTransactionIsNotTakenForAReadOnlyServer() async throws {
        try await TestDatabase.withSchema { _, conninfo in
            let pool = PostgresPool(configuration: .init(connection: .init(conninfo), maxConnections: 1))
            try await pool.query("CREATE TABLE writes (n int)")
            let error = await #expect(throws: PostgresError.self) {
                try await pool.withTransaction(readOnly: true) { try await $0.query("INSERT INTO writes VALUES (1)") }
            }
            #expect(error?.code == .server)
            #expect(error?.sqlState == .readOnlySQLTransaction)
            await pool.close()
        }
    }

    @Test func connectFailuresReachTheCallerAndThePoolRecovers() async throws {
        let pool = PostgresPool(configuration: .init(connection: .init("postgres://stockroom:secret-pw@127.0.0.1:1/nowhere?connect_timeout=2"), maxConnections: 2))
        let error = await #expect(throws: PostgresError.self) { try await pool.query("SELECT 1") }
        #expect(error?.code == .connection)
        #expect(pool.statistics.open == 0)
        await pool.close()
    }
}
