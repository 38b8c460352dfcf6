public import Logging
import Synchronization

/// A bounded pool of connections.
///
/// ```swift
/// let pool = PostgresPool(configuration: .init(connection: .init(url)), logger: logger)
/// let count = try await pool.withConnection { try await $0.query("SELECT count(*) FROM users").first![0, as: Int.self] }
/// ```
///
/// - `acquireTimeout` bounds the wait for a free connection; then `.poolExhausted`.
/// - A connection that broke, or came back inside a transaction, is closed and replaced;
///   so is one whose server refused a write as read-only (a standby since a failover).
///   Idle connections that the server dropped (restart, `pg_terminate_backend`) reconnect
///   before their next statement, so a database restart never leaves the pool broken.
/// - `close()` refuses new work, waits for leased connections to come back, closes all,
///   and returns once every connection is closed and its thread has exited.
public final class PostgresPool: Sendable {
    public struct Configuration: Sendable {
        public var connection: PostgresConnection.Configuration
        public var maxConnections: Int = 8
        public var acquireTimeout: Duration = .seconds(5)

        /// Time limits every pooled connection runs with, unless `connection` sets its own.
        public static let defaultStatementTimeout = Duration.seconds(5)
        public static let defaultLockTimeout = Duration.seconds(2)
        public static let defaultIdleInTransactionSessionTimeout = Duration.seconds(10)

        /// Pooled connections reconnect when the server dropped them while idle, and get
        /// time limits: `statement_timeout` 5 s, `lock_timeout` 2 s,
        /// `idle_in_transaction_session_timeout` 10 s, and the client's own deadline
        /// half a second past the statement timeout — unless `connection` set them. Set a
        /// limit to nil afterwards to leave the server's setting.
        public init(connection: PostgresConnection.Configuration, maxConnections: Int = 8, acquireTimeout: Duration = .seconds(5)) {
            self.connection = connection
            self.connection.reconnectWhenDroppedIdle = true
            if connection.statementTimeout == nil { self.connection.statementTimeout = Self.defaultStatementTimeout }
            if connection.lockTimeout == nil { self.connection.lockTimeout = Self.defaultLockTimeout }
            if connection.idleInTransactionSessionTimeout == nil {
                self.connection.idleInTransactionSessionTimeout = Self.defaultIdleInTransactionSessionTimeout
            }
            self.maxConnections = maxConnections
            self.acquireTimeout = acquireTimeout
        }

        /// See `PostgresConnection.Configuration.statementTimeout`.
        public var statementTimeout: Duration? {
            get { connection.statementTimeout }
            set { connection.statementTimeout = newValue }
        }
        /// See `PostgresConnection.Configuration.lockTimeout`.
        public var lockTimeout: Duration? {
            get { connection.lockTimeout }
            set { connection.lockTimeout = newValue }
        }
        /// See `PostgresConnection.Configuration.idleInTransactionSessionTimeout`.
        public var idleInTransactionSessionTimeout: Duration? {
            get { connection.idleInTransactionSessionTimeout }
            set { connection.idleInTransactionSessionTimeout = newValue }
        }
        /// See `PostgresConnection.Configuration.operationTimeout`.
        public var operationTimeout: Duration? {
            get { connection.operationTimeout }
            set { connection.operationTimeout = newValue }
        }
    }

    private typealias Machine = PoolStateMachine<PostgresConnection>
    private struct State {
        var machine: Machine
        var waiters: [Int: CheckedContinuation<PostgresConnection, any Error>] = [:]
        var nextWaiter = 0
        var timers: [Int: Task<Void, any Error>] = [:]
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
        /// Connections the machine has let go of whose `close()` has not returned yet:
        /// `close()` waits for them too, so that no connection or its thread outlives it.
        var closing = 0
        var lastConnectError: (any Error)?

        /// Everyone waiting in `close()`, once there is nothing left to wait for.
        mutating func takeCloseWaitersIfClosed() -> [CheckedContinuation<Void, Never>] {
            guard machine.isClosing, machine.total == 0, closing == 0 else { return [] }
            defer { closeWaiters = [] }
            return closeWaiters
        }
    }

    public let configuration: Configuration
    public let logger: Logger
    private let state: Mutex<State>

    public init(configuration: Configuration, logger: Logger = Logger(label: "LibPQ.pool")) {
        self.configuration = configuration
        self.logger = logger
        self.state = Mutex(State(machine: Machine(maxConnections: configuration.maxConnections)))
    }

    /// Connections currently open or opening, how many of those are lent out, and how
    /// many callers wait for one (a pool too small, or a database too slow, shows here
    /// first).
    public var statistics: (open: Int, leased: Int, waiting: Int) {
        state.withLock { ($0.machine.total, $0.machine.leased, $0.machine.waiters.count) }
    }

    /// Lends a connection to `body` and takes it back when `body` ends.
    ///
    /// Unless the caller is isolated to an actor, `body` runs on the connection's own
    /// thread (it prefers ``PostgresConnection/executor``), so its statements run without
    /// a thread switch each. Keep long computations out of `body`: they hold that thread.
    public func withConnection<T>(
        isolation actor: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let connection = try await acquire()
        do {
            let value = try await withTaskExecutorPreference(connection.executor, isolation: actor) {
                try await body(connection)
            }
            release(connection)
            return value
        } catch {
            release(connection)
            throw error
        }
    }

    /// Runs one statement on a pooled connection.
    @discardableResult
    public func query(_ query: PostgresQuery, timeout: Duration? = nil) async throws -> PostgresRows {
        try await withConnection { try await $0.query(query, timeout: timeout) }
    }

    /// Runs one statement that changes data, as a transaction of its own, on a pooled
    /// connection. Unlike `query`, it knows its commit's outcome: when the connection
    /// breaks before the answer, the server is asked whether it committed (see
    /// `PostgresConnection.pipelineTransaction`). So `.connection` means nothing was
    /// written and a retry is safe; `.commitOutcomeUnknown` means it could not be asked.
    /// Costs a BEGIN, a COMMIT and one more tiny statement in the same round trip.
    @discardableResult
    public func write(_ query: PostgresQuery, timeout: Duration? = nil) async throws -> PostgresRows {
        try await withConnection { try await $0.pipelineTransaction([query], timeout: timeout)[0] }
    }

    /// Runs `body` in a transaction on a pooled connection, retrying the whole
    /// transaction on serialization failures and deadlocks up to `maxAttempts` times.
    public func withTransaction<T>(
        isolation level: PostgresIsolationLevel? = nil,
        readOnly: Bool = false,
        maxAttempts: Int = 1,
        isolation actor: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await withTransactionRetry(maxAttempts: maxAttempts) {
            try await withConnection { connection in
                try await connection.withTransaction(isolation: level, readOnly: readOnly) { try await body($0) }
            }
        }
    }

    // MARK: - Acquire and release

    func acquire() async throws -> PostgresConnection {
        if let connection = state.withLock({ $0.machine.acquireIdle() }) { return connection }
        let id = state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                enum Outcome { case ready(PostgresConnection), failed(any Error), waiting(open: Bool) }
                // Registering with the machine and parking the continuation happen under
                // one lock, so a connection released meanwhile always finds its waiter.
                let outcome = state.withLock { state -> Outcome in
                    if Task.isCancelled { return .failed(CancellationError()) }
                    switch state.machine.acquire(id) {
                    case .leased(let connection): return .ready(connection)
                    case .failed: return .failed(PostgresError(code: .closed, message: "the pool is closed"))
                    case .wait(let open):
                        state.waiters[id] = continuation
                        return .waiting(open: open)
                    }
                }
                switch outcome {
                case .ready(let connection): continuation.resume(returning: connection)
                case .failed(let error): continuation.resume(throwing: error)
                case .waiting(let open):
                    if open { openConnection() }
                    startTimer(for: id)
                }
            }
        } onCancel: {
            abandon(id, with: CancellationError())
        }
    }

    private func startTimer(for id: Int) {
        let timeout = configuration.acquireTimeout
        let limit = configuration.maxConnections
        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            self?.abandon(id, with: PostgresError(code: .poolExhausted, message: "no connection became free within \(timeout.readable) (all \(limit) in use)"))
        }
        let served = state.withLock { state -> Bool in
            guard state.waiters[id] != nil else { return true }
            state.timers[id] = timer
            return false
        }
        if served { timer.cancel() }
    }

    private func abandon(_ id: Int, with error: any Error) {
        let continuation = state.withLock { state -> CheckedContinuation<PostgresConnection, any Error>? in
            state.timers.removeValue(forKey: id)?.cancel()
            guard state.machine.abandon(id) else { return nil }
            return state.waiters.removeValue(forKey: id)
        }
        continuation?.resume(throwing: error)
    }

    func release(_ connection: PostgresConnection) {
        let reusable = !connection.isBroken && connection.isIdle && !connection.isOnReadOnlyServer
        if connection.isOnReadOnlyServer {
            logger.debug("closing a connection to a server that takes no writes (a standby since a failover?)")
        } else if !reusable && !connection.isBroken {
            logger.debug("closing a connection returned inside a transaction")
        }
        let action = state.withLock { $0.machine.release(connection, reusable: reusable) }
        if !reusable { retire(connection) }
        perform(action)
    }

    private func openConnection() {
        Task {
            do {
                let connection = try await PostgresConnection.connect(configuration.connection, logger: logger)
                perform(state.withLock { $0.machine.opened(connection) })
            } catch {
                state.withLock { $0.lastConnectError = error }
                perform(state.withLock { $0.machine.openFailed() })
            }
        }
    }

    private func perform(_ action: Machine.Action) {
        switch action {
        case .none:
            break
        case .lease(let connection, let id):
            let continuation = state.withLock { state in
                state.timers.removeValue(forKey: id)?.cancel()
                return state.waiters.removeValue(forKey: id)
            }
            continuation?.resume(returning: connection)
        case .open:
            openConnection()
        case .fail(let id, _, let thenOpen):
            let (continuation, error) = state.withLock { state in
                state.timers.removeValue(forKey: id)?.cancel()
                return (state.waiters.removeValue(forKey: id), state.lastConnectError)
            }
            continuation?.resume(throwing: error ?? PostgresError(code: .connection, message: "could not open a connection"))
            if thenOpen { openConnection() }
        case .close(let connection):
            retire(connection)
        case .shutDown(let connections, _):
            connections.forEach(retire)
        case .finishedClosing:
            break
        }
        state.withLock { $0.takeCloseWaitersIfClosed() }.forEach { $0.resume() }
    }

    /// Closes a connection the machine no longer counts, counted until it is closed.
    private func retire(_ connection: PostgresConnection) {
        state.withLock { $0.closing += 1 }
        Task {
            await connection.close()
            let finished = state.withLock { state in
                state.closing -= 1
                return state.takeCloseWaitersIfClosed()
            }
            finished.forEach { $0.resume() }
        }
    }

    /// `close()`, waiting at most `limit`: false if connections were still out then
    /// (they close as they come back). For a process about to exit on a deadline.
    @discardableResult
    public func close(within limit: Duration) async -> Bool {
        let finished = try? await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Bool, any Error>) in
            let resumption = Resumption(continuation)
            Task {
                await self.close()
                resumption.resume(with: .success(true))
            }
            Task {
                try? await Task.sleep(for: limit)
                resumption.resume(with: .success(false))
            }
        }
        return finished ?? false
    }

    /// Stops lending, fails everyone waiting, and returns once every connection is
    /// back and closed.
    public func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let (action, waiting) = state.withLock { state in
                state.closeWaiters.append(continuation)
                let action = state.machine.close()
                let waiting = state.machine.takeWaiters().compactMap { id in
                    state.timers.removeValue(forKey: id)?.cancel()
                    return state.waiters.removeValue(forKey: id)
                }
                return (action, waiting)
            }
            for waiter in waiting { waiter.resume(throwing: PostgresError(code: .closed, message: "the pool is closed")) }
            perform(action)
        }
    }
}
