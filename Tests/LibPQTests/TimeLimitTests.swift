import Foundation
@testable import LibPQ
import Testing

/// Time limits and faults against the real server: limits set at connect, deadlines that
/// hold when the server cannot answer, cancels that hit only their own statement, and
/// commits whose outcome is found out when the connection breaks.
@Suite("Time limits, cancels and commit outcomes")
struct TimeLimitTests {
    static func configuration(_ url: String, statement: Duration? = nil, lock: Duration? = nil, deadline: Duration? = nil) -> PostgresConnection.Configuration {
        var configuration = PostgresConnection.Configuration(url)
        configuration.statementTimeout = statement
        configuration.lockTimeout = lock
        configuration.operationTimeout = deadline
        configuration.cancelGrace = .milliseconds(500)
        return configuration
    }

    @Test func limitsKeepalivesAndEncodingAreSetAtConnect() async throws {
        try await TestDatabase.withSchema { _, url in
            // The string asks for LATIN1 and its own statement_timeout: the encoding stays
            // UTF8, and the configuration's limit wins.
            var configuration = Self.configuration(url + "%20-cstatement_timeout%3D99&client_encoding=LATIN1", statement: .milliseconds(1500), lock: .milliseconds(250))
            configuration.idleInTransactionSessionTimeout = .seconds(3)
            configuration.tcpUserTimeout = .seconds(7)
            let connection = try await PostgresConnection.connect(configuration)
            func show(_ name: String) async throws -> String {
                try await connection.query("SELECT current_setting(\(name))").scalar()
            }
            #expect(try await show("statement_timeout") == "1500ms")
            #expect(try await show("lock_timeout") == "250ms")
            #expect(try await show("idle_in_transaction_session_timeout") == "3s")
            #expect(try await show("client_encoding") == "UTF8")
            // The string's own search_path option is kept next to the limits.
            #expect(try await show("search_path").hasPrefix("t_"))
            // The client's socket: keepalives on, unacknowledged data given up after 7 s.
            let fd = PQsocketOf(connection)
            #expect(socketOption(fd, SOL_SOCKET, SO_KEEPALIVE) == 1)
            #expect(socketOption(fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE) == 10)
            #expect(socketOption(fd, Int32(IPPROTO_TCP), TCP_USER_TIMEOUT) == 7000)
            await connection.close()
        }
    }

    @Test func aStatementWaitingForALockGivesUpAtTheLockTimeout() async throws {
        try await TestDatabase.withSchema { holder, url in
            try await holder.query("CREATE TABLE t (id int)")
            try await holder.query("BEGIN")
            try await holder.query("LOCK t")
            let victim = try await PostgresConnection.connect(Self.configuration(url, statement: .seconds(5), lock: .milliseconds(300)))
            let start = ContinuousClock.now
            let error = await #expect(throws: PostgresError.self) { try await victim.query("SELECT * FROM t") }
            #expect(error?.sqlState == .lockNotAvailable)
            #expect(ContinuousClock.now - start < .seconds(2))
            #expect(!victim.isBroken)
            #expect(try await victim.query("SELECT 1").scalar(Int.self) == 1)
            try await holder.query("ROLLBACK")
            await victim.close()
        }
    }

    /// A backend frozen with SIGSTOP ends no statement, not even on a cancel: the
    /// client's deadline must, and the connection must not be reused.
    @Test(arguments: [false, true])
    func aFrozenBackendEndsAtTheDeadline(onTheConnectionsThread: Bool) async throws {
        try await TestDatabase.withSchema { _, url in
            let connection = try await PostgresConnection.connect(Self.configuration(url, deadline: .milliseconds(400)))
            let pid = connection.backendPID
            try await withFrozenBackend(pid) {
                let start = ContinuousClock.now
                let error = await #expect(throws: PostgresError.self) {
                    if onTheConnectionsThread {
                        // Inline on the thread: ended by shutting the socket.
                        try await withTaskExecutorPreference(connection.executor) { _ = try await connection.query("SELECT 1") }
                    } else {
                        _ = try await connection.query("SELECT 1")
                    }
                }
                let elapsed = ContinuousClock.now - start
                #expect(error?.code == .timeout)
                // Deadline 400 ms + grace 500 ms, checked every 10 ms; room for a loaded machine.
                #expect(elapsed >= .milliseconds(850) && elapsed < .seconds(4), "took \(elapsed)")
                #expect(connection.isBroken)
            }
            await connection.close()
        }
    }

    @Test func aDatabaseThatStopsAnsweringTimesOutThePoolAndItRecovers() async throws {
        try await TestDatabase.withSchema { _, url in
            var configuration = PostgresPool.Configuration(connection: Self.configuration(url), maxConnections: 1)
            configuration.operationTimeout = .milliseconds(300)
            configuration.connection.cancelGrace = .milliseconds(300)
            let pool = PostgresPool(configuration: configuration)
            let pid = try await pool.withConnection { $0.backendPID }
            try await withFrozenBackend(pid) {
                let error = await #expect(throws: PostgresError.self) { try await pool.query("SELECT 1") }
                #expect(error?.code == .timeout)
            }
            // The broken connection was replaced by a new one.
            #expect(try await pool.query("SELECT pg_backend_pid()").scalar(Int32.self) != pid)
            await pool.close()
        }
    }

    /// After a cancelled statement the next one on the same connection must never meet
    /// the cancel (or a repeat of it) meant for the one before.
    @Test func aCancelHitsOnlyItsOwnStatement() async throws {
        try await TestDatabase.withSchema { connection in
            for _ in 0..<8 {
                let error = await #expect(throws: PostgresError.self) {
                    try await connection.query("SELECT pg_sleep(5)", timeout: .milliseconds(30))
                }
                #expect(error?.code == .timeout)
                #expect(connection.cancelToken.isSettled)
                // Longer than the 250 ms between repeated cancel requests.
                let rows = try await connection.query("SELECT pg_sleep(0.3), 7")
                #expect(try rows[0][1, as: Int.self] == 7)
            }
            #expect(!connection.isBroken)
        }
    }

    @Test func aCancelledTaskResumesEvenWhenTheServerCannotCancel() async throws {
        try await TestDatabase.withSchema { _, url in
            let connection = try await PostgresConnection.connect(Self.configuration(url))
            try await withFrozenBackend(connection.backendPID) {
                let task = Task { try await connection.query("SELECT 1") }
                try await Task.sleep(for: .milliseconds(100))
                let start = ContinuousClock.now
                task.cancel()
                await #expect(throws: CancellationError.self) { try await task.value }
                // At once, whatever the frozen server does; room for a loaded machine.
                #expect(ContinuousClock.now - start < .seconds(4))
            }
            await connection.close()
        }
    }

    @Test func nestedTransactionsAreSavepoints() async throws {
        try await TestDatabase.withSchema { connection in
            try await connection.query("CREATE TABLE t (id int)")
            struct Refused: Error {}
            try await connection.withTransaction { tx in
                try await tx.query("INSERT INTO t VALUES (1)")
                await #expect(throws: Refused.self) {
                    try await tx.withTransaction { inner in
                        try await inner.query("INSERT INTO t VALUES (2)")
                        throw Refused()
                    }
                }
                // A failed statement inside: only the inner work is rolled back.
                let error = await #expect(throws: PostgresError.self) {
                    try await tx.withTransaction { inner in
                        try await inner.query("INSERT INTO t VALUES (3)")
                        _ = try? await inner.query("SELECT 1/0")
                    }
                }
                #expect(error?.code == .transactionAborted)
                _ = try await tx.withTransaction { inner in try await inner.query("INSERT INTO t VALUES (4)") }
                let misuse = await #expect(throws: PostgresError.self) {
                    try await tx.withTransaction(isolation: .serializable) { _ in }
                }
                #expect(misuse?.code == .misuse)
                try await tx.query("INSERT INTO t VALUES (5)")
            }
            #expect(try await connection.query("SELECT array_agg(id ORDER BY id) FROM t").scalar([Int32].self) == [1, 4, 5])
            #expect(connection.isIdle)
        }
    }

    @Test func connectionErrorsNeverQuoteTheConnectionString() async throws {
        for url in [
            "postgres://stockroom:p%zzsecret-pw@127.0.0.1:1/db",
            "postgresql://stockroom:secret-pw@127.0.0.1:1/db?nonsense=secret-pw",
            "host=127.0.0.1 password=secret-pw port=1 dbname",
        ] {
            let error = await #expect(throws: PostgresError.self) { try await PostgresConnection.connect(url) }
            let text = "\(error!) \(error!.debugDescription)"
            #expect(!text.contains("secret-pw"), "\(text)")
            #expect(!text.contains("%zz"), "\(text)")
        }
        // A well-formed string with a wrong password: libpq's reason, no password.
        let url = TestDatabase.url.replacingOccurrences(of: "stockroom:stockroom@", with: "stockroom:secret-pw-2@")
        let error = await #expect(throws: PostgresError.self) { try await PostgresConnection.connect(url) }
        #expect(error?.message.contains("secret-pw-2") == false)
        #expect(error?.message.contains("password authentication failed") == true)
    }

    @Test func changingTheClientEncodingRetiresTheConnection() async throws {
        try await TestDatabase.withSchema { connection in
            let error = await #expect(throws: PostgresError.self) { try await connection.query("SET client_encoding = 'LATIN1'") }
            #expect(error?.message.contains("client_encoding") == true)
            #expect(connection.isBroken)
        }
    }

    // MARK: - Commit outcomes

    /// A table whose COMMIT takes `seconds`: a deferred constraint trigger sleeps at commit
    /// time, before the commit record is written.
    static func makeSlowCommitTable(_ connection: PostgresConnection, seconds: Double) async throws {
        try await connection.simpleQuery(unsafeSQL: """
            CREATE TABLE t (id int);
            CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_sleep(\(seconds)); RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON t DEFERRABLE INITIALLY DEFERRED
                FOR EACH ROW EXECUTE FUNCTION slow_commit();
            """)
    }

    /// Waits until `pid` sleeps in the commit trigger.
    static func waitUntilCommitting(_ pid: Int32, watcher: PostgresConnection) async throws {
        for _ in 0..<200 {
            let waiting = try await watcher.query("SELECT count(*) FROM pg_stat_activity WHERE pid = \(pid) AND wait_event = 'PgSleep'").scalar(Int.self)
            if waiting == 1 { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("backend \(pid) never reached the commit")
    }

    @Test func aCommitThatWentThroughIsReportedAsSuchWhenTheConnectionBreaks() async throws {
        try await TestDatabase.withSchema { watcher, url in
            try await Self.makeSlowCommitTable(watcher, seconds: 0.5)
            let connection = try await PostgresConnection.connect(Self.configuration(url, deadline: .seconds(10)))
            let pid = connection.backendPID
            let committing = Task {
                _ = try await connection.withTransaction { tx in try await tx.query("INSERT INTO t VALUES (1)") }
            }
            try await Self.waitUntilCommitting(pid, watcher: watcher)
            // Our end goes away; the server finishes the commit all the same.
            connection.socket.sever()
            try await committing.value
            #expect(try await watcher.query("SELECT count(*) FROM t").scalar(Int.self) == 1)

            // The same through a pipelined transaction.
            let pipelined = try await PostgresConnection.connect(Self.configuration(url, deadline: .seconds(10)))
            let pipelining = Task { try await pipelined.pipelineTransaction(["INSERT INTO t VALUES (2) RETURNING id"]) }
            try await Self.waitUntilCommitting(pipelined.backendPID, watcher: watcher)
            pipelined.socket.sever()
            #expect(try await pipelining.value[0].scalar(Int32.self) == 2)
            #expect(try await watcher.query("SELECT count(*) FROM t").scalar(Int.self) == 2)
        }
    }

    /// Waits until backend `pid` has ended.
    static func waitUntilGone(_ pid: Int32, watcher: PostgresConnection) async throws {
        for _ in 0..<500 {
            if try await watcher.query("SELECT count(*) FROM pg_stat_activity WHERE pid = \(pid)").scalar(Int.self) == 0 { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("backend \(pid) never ended")
    }

    /// Cut by this end (as at a deadline whose cancel went unanswered) while the statement
    /// still runs, before the transaction's id came back: the server runs on and commits.
    /// Reported as a plain connection error, that meant "not done" to every caller, and a
    /// retry without a key placed the order twice. Now the backend is asked: it committed,
    /// and since its rows are lost with the cut, the outcome is known but the value not
    /// (`.commitOutcomeUnknown`, over, for the caller to find by what it knows).
    @Test func aTransactionStillRunningWhenThisEndCutsItIsAskedAboutNotTakenForFailed() async throws {
        try await TestDatabase.withSchema { watcher, url in
            try await watcher.query("CREATE TABLE t (id int)")
            let connection = try await PostgresConnection.connect(Self.configuration(url, deadline: .seconds(10)))
            let pid = connection.backendPID
            // Long enough for the question to find the backend still running, even on a
            // loaded machine.
            let running = Task { try await connection.pipelineTransaction(["INSERT INTO t VALUES (1)", "SELECT pg_sleep(1.5)"]) }
            try await Self.waitUntilCommitting(pid, watcher: watcher)
            connection.socket.sever()
            let error = await #expect(throws: PostgresError.self) { try await running.value }
            try await Self.waitUntilGone(pid, watcher: watcher)
            #expect(try await watcher.query("SELECT count(*) FROM t").scalar(Int.self) == 1, "the server committed after the cut")
            #expect(error?.code == .commitOutcomeUnknown, "not a connection error, which says it was not done")
            #expect(error?.transactionIsOver == true)
            #expect(error?.message == "the transaction committed, but the connection was cut before its results came back", "\(String(describing: error))")
        }
    }

    /// The same cut, and the transaction then fails on the server: asked, the backend's
    /// transaction id says it aborted, so the answer is the definite "did not commit".
    @Test func aCutTransactionThatThenFailsIsReportedAsNotCommitted() async throws {
        try await TestDatabase.withSchema { watcher, url in
            try await watcher.query("CREATE TABLE t (id int)")
            let connection = try await PostgresConnection.connect(Self.configuration(url, deadline: .seconds(10)))
            let pid = connection.backendPID
            let running = Task {
                try await connection.pipelineTransaction(["INSERT INTO t VALUES (1)", "SELECT pg_sleep(1.5)", "SELECT 1 / (SELECT count(*) - 1 FROM t)"])
            }
            try await Self.waitUntilCommitting(pid, watcher: watcher)
            connection.socket.sever()
            let error = await #expect(throws: PostgresError.self) { try await running.value }
            try await Self.waitUntilGone(pid, watcher: watcher)
            #expect(try await watcher.query("SELECT count(*) FROM t").scalar(Int.self) == 0)
            #expect(error?.code == .connection)
            #expect(error?.message.contains("did not commit") == true, "\(String(describing: error))")
        }
    }

    /// What the backend of a cut connection says, in the states the cut can leave it in.
    @Test func aCutBackendIsJudgedByWhatItStillDoes() async throws {
        try await TestDatabase.withSchema { watcher, url in
            let configuration = Self.configuration(url, deadline: .seconds(10))
            // In a transaction, nothing written, waiting for more: ended, nothing committed.
            let waiting = try await PostgresConnection.connect(configuration)
            try await waiting.query("BEGIN")
            try await waiting.query("SELECT 1")
            let cut = CutBackend(backendPID: waiting.backendPID, clientPort: waiting.socket.localPort)
            #expect(cut.clientPort > 0, "a TCP connection's port is known")
            #expect(try await PostgresConnection.didCommit(cut, configuration: configuration, logger: waiting.logger) == false)
            try await Self.waitUntilGone(cut.backendPID, watcher: watcher)

            // Idle outside a transaction: it finished whatever it had; without an id, unknown.
            let idle = try await PostgresConnection.connect(configuration)
            let finished = await #expect(throws: PostgresError.self) {
                try await PostgresConnection.didCommit(CutBackend(backendPID: idle.backendPID, clientPort: idle.socket.localPort), configuration: configuration, logger: idle.logger)
            }
            #expect(finished?.code == .commitOutcomeUnknown && finished?.transactionIsOver == true)

            // Another connection's port with this process id is not this backend: as gone.
            let elsewhere = await #expect(throws: PostgresError.self) {
                try await PostgresConnection.didCommit(CutBackend(backendPID: idle.backendPID, clientPort: watcher.socket.localPort), configuration: configuration, logger: idle.logger)
            }
            #expect(elsewhere?.message.contains("has ended") == true, "\(String(describing: elsewhere))")
            await idle.close()
        }
    }

    @Test func aCommitThatDidNotGoThroughIsReportedAsAConnectionError() async throws {
        try await TestDatabase.withSchema { watcher, url in
            try await Self.makeSlowCommitTable(watcher, seconds: 5)
            let connection = try await PostgresConnection.connect(Self.configuration(url, deadline: .seconds(10)))
            let pid = connection.backendPID
            let committing = Task {
                try await connection.pipelineTransaction(["INSERT INTO t VALUES (1)"])
            }
            try await Self.waitUntilCommitting(pid, watcher: watcher)
            try await watcher.query("SELECT pg_terminate_backend(\(pid))")
            let error = await #expect(throws: PostgresError.self) { try await committing.value }
            #expect(error?.code == .connection)
            #expect(error?.message.contains("did not commit") == true)
            #expect(try await watcher.query("SELECT count(*) FROM t").scalar(Int.self) == 0)
        }
    }

    /// A deferred constraint fails at the commit, which in a pipeline is the sync: the
    /// failure is reported as such, nothing is kept, and the connection stays in step.
    @Test func aCommitThatFailsAtTheSyncIsReportedAndNothingIsKept() async throws {
        try await TestDatabase.withSchema { connection in
            try await connection.simpleQuery(unsafeSQL: """
                CREATE TABLE t (id int);
                CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN IF NEW.id < 0 THEN RAISE EXCEPTION 'refused at commit'; END IF; RETURN NULL; END $$;
                CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON t DEFERRABLE INITIALLY DEFERRED
                    FOR EACH ROW EXECUTE FUNCTION refuse();
                """)
            let error = await #expect(throws: PostgresError.self) {
                try await connection.pipelineTransaction(["INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (-1)"])
            }
            #expect(error?.sqlState == .raiseException)
            #expect(error?.message == "refused at commit")
            // Statements in a pipeline of their own: only the one that fails to commit fails.
            let each = try await connection.pipeline(["INSERT INTO t VALUES (2)", "INSERT INTO t VALUES (-2)", "INSERT INTO t VALUES (3)"])
            #expect(each.map { (try? $0.get()) != nil } == [true, false, true])
            #expect(try await connection.query("SELECT array_agg(id ORDER BY id) FROM t").scalar([Int32].self) == [2, 3])
            #expect(connection.isIdle && !connection.isBroken)
        }
    }

    @Test func aReadOnlyTransactionNeedsNoOutcome() async throws {
        try await TestDatabase.withSchema { connection in
            // No id is assigned when nothing is written, and the commit is a plain one.
            let value = try await connection.withTransaction { tx in try await tx.query("SELECT 41 + 1").scalar(Int.self) }
            #expect(value == 42)
        }
    }

    /// After a failover the new primary may never have seen the id of a transaction whose
    /// COMMIT broke on the old one: `txid_status` fails for an id "in the future". That is
    /// an answer, not an outage to wait out: the transaction is over and unknown at once
    /// (the caller then looks its keyed order up), not after the 15 s deadline.
    @Test func aTransactionIDTheNewServerNeverGaveIsOverAndUnknownAtOnce() async throws {
        let connection = try await PostgresConnection.connect(TestDatabase.url)
        // An id far past this server's counter, from a server that started at another time.
        let rows = try await connection.query("SELECT txid_current() + 1000000000, 0::float8")
        await connection.close()
        let transaction = try #require(Transaction(rows, backendPID: 0))
        let clock = ContinuousClock()
        let start = clock.now
        let error = await #expect(throws: PostgresError.self) {
            _ = try await PostgresConnection.didCommit(transaction, configuration: .init(TestDatabase.url), logger: TestDatabase.logger)
        }
        #expect(error?.code == .commitOutcomeUnknown)
        #expect(error?.transactionIsOver == true)
        #expect(clock.now - start < .seconds(5))
    }
}

/// Runs `body` while the server process `pid` is stopped (SIGSTOP), and always resumes it.
func withFrozenBackend(_ pid: Int32, isolation actor: isolated (any Actor)? = #isolation, _ body: () async throws -> Void) async throws {
    #expect(kill(pid, SIGSTOP) == 0, "cannot stop backend \(pid): run the tests as the database's OS user or root")
    do {
        try await body()
    } catch {
        kill(pid, SIGCONT)
        throw error
    }
    kill(pid, SIGCONT)

}

func PQsocketOf(_ connection: PostgresConnection) -> Int32 { connection.socketDescriptor }

func socketOption(_ fd: Int32, _ level: Int32, _ name: Int32) -> Int32 {
    var value: Int32 = -1
    var length = socklen_t(MemoryLayout<Int32>.size)
    guard getsockopt(fd, level, name, &value, &length) == 0 else { return -1 }
    return value
}
