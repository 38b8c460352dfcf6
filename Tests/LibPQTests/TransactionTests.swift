import LibPQ
import Testing

@Suite("Transactions and retries")
struct TransactionTests {
    struct Boom: Error {}

    @Test func commitsWhenTheBodyReturnsAndRollsBackWhenItThrows() async throws {
        try await TestDatabase.withSchema { connection in
            try await connection.query("CREATE TABLE t (n int)")
            let value = try await connection.withTransaction { tx in
                try await tx.query("INSERT INTO t VALUES (1)")
                return 42
            }
            #expect(value == 42)
            await #expect(throws: Boom.self) {
                try await connection.withTransaction { tx in
                    try await tx.query("INSERT INTO t VALUES (2)")
                    throw Boom()
                }
            }
            let rows = try await connection.query("SELECT n FROM t")
            #expect(try rows.map { try $0[0, as: Int.self] } == [1])
            #expect(connection.isIdle)
        }
    }

    @Test func aSwallowedFailureDoesNotReportACommit() async throws {
        try await TestDatabase.withSchema { connection in
            try await connection.query("CREATE TABLE t (n int PRIMARY KEY)")
            let error = await #expect(throws: PostgresError.self) {
                try await connection.withTransaction { tx in
                    try await tx.query("INSERT INTO t VALUES (1)")
                    _ = try? await tx.query("INSERT INTO t VALUES (1)")  // duplicate, caught
                }
            }
            #expect(error?.code == .transactionAborted)
            #expect(try await connection.query("SELECT count(*) FROM t").scalar(Int.self) == 0)
        }
    }

    @Test func isolationLevelAndReadOnlyAreApplied() async throws {
        try await TestDatabase.withSchema { connection in
            let level = try await connection.withTransaction(isolation: .serializable, readOnly: true) { tx in
                try await tx.query("SHOW transaction_isolation").scalar(String.self)
            }
            #expect(level == "serializable")
            let error = await #expect(throws: PostgresError.self) {
                try await connection.withTransaction(readOnly: true) { tx in
                    try await tx.query("CREATE TABLE nope (n int)")
                }
            }
            #expect(error?.sqlState == .readOnlySQLTransaction)
        }
    }

    /// Two serializable transactions that each read what the other writes: one of them
    /// must fail with 40001 at the server, and the retry helper runs it again.
    @Test func retryHelperRecoversFromARealSerializationFailure() async throws {
        try await TestDatabase.withSchema { connection, conninfo in
            try await connection.query("CREATE TABLE doctors (name text PRIMARY KEY, on_call bool NOT NULL)")
            try await connection.query("INSERT INTO doctors VALUES ('alice', true), ('bob', true)")
            let pool = PostgresPool(configuration: .init(connection: .init(conninfo), maxConnections: 2))
            defer { Task { await pool.close() } }
            let gate = Gate()
            let committed = Latch()
            let attempts = Counter()

            // Each takes a doctor off call if the other is still on call; both read
            // before either writes, which SERIALIZABLE must not allow to both commit.
            // A retry waits for the survivor's commit: started earlier, it would race
            // the survivor again and, on a loaded machine, could fail every attempt.
            func goOffCall(_ name: String) async throws {
                do {
                    try await pool.withTransaction(isolation: .serializable, maxAttempts: 5) { tx in
                        let attempt = attempts.increment()
                        if attempt > 2 { await committed.wait() }
                        let onCall = try await tx.query("SELECT count(*) FROM doctors WHERE on_call").scalar(Int.self)
                        if attempt <= 2 { await gate.arrive(expected: 2) }
                        if onCall >= 2 {
                            try await tx.query("UPDATE doctors SET on_call = false WHERE name = \(name)")
                        }
                    }
                } catch {
                    await committed.open()  // a failure fails the test; it must not hang it
                    throw error
                }
                await committed.open()
            }
            async let first: Void = goOffCall("alice")
            async let second: Void = goOffCall("bob")
            _ = try await (first, second)

            #expect(attempts.value == 3, "exactly one transaction had to be retried, once")
            #expect(try await connection.query("SELECT count(*) FROM doctors WHERE on_call").scalar(Int.self) == 1)
        }
    }

    @Test func retryGivesUpAfterMaxAttempts() async throws {
        let attempts = Counter()
        let error = await #expect(throws: PostgresError.self) {
            try await withTransactionRetry(maxAttempts: 3) {
                _ = attempts.increment()
                throw PostgresError(code: .server, message: "could not serialize access", sqlState: .serializationFailure)
            }
        }
        #expect(error?.sqlState == .serializationFailure)
        #expect(attempts.value == 3)
        // Other errors are not retried.
        let once = Counter()
        await #expect(throws: PostgresError.self) {
            try await withTransactionRetry(maxAttempts: 3) {
                _ = once.increment()
                throw PostgresError(code: .server, message: "duplicate", sqlState: .uniqueViolation)
            }
        }
        #expect(once.value == 1)
    }
}
