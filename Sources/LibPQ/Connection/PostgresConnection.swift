internal import CLibPQ
internal import Dispatch
public import Logging
import Synchronization

/// One connection to PostgreSQL, driven through libpq.
///
/// libpq's calls block, so each connection runs them on a thread of its own — never on
/// Swift's cooperative thread pool, which has only as many threads as cores and would
/// stall every task while a query waits on the network. Operations submitted
/// concurrently run one after another. That thread is also a `TaskExecutor`
/// (``executor``): a task that prefers it — as the body of `PostgresPool.withConnection`
/// does — runs its statements inline, without switching threads per statement.
///
/// Cancelling the calling task cancels the running statement on the server (`PQcancel`);
/// so does a per-query `timeout`.
public final class PostgresConnection: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// A libpq connection string (`host=… dbname=…`) or a `postgres://` URL. It goes to
        /// libpq unchanged, so multi-host URLs and `target_session_attrs` work.
        public var connectionString: String
        /// Prepared statements kept per connection; 0 disables preparing.
        public var statementCacheCapacity: Int = 256
        /// Seconds to wait for the server when connecting, unless the string sets
        /// `connect_timeout` itself.
        public var connectTimeout: Int = 10
        /// When the server dropped this connection while it was idle (a restart,
        /// `pg_terminate_backend`), reconnect transparently before the next statement.
        /// Session state (SET, LISTEN, temporary tables) is lost then, so it is off by
        /// default for single connections and on for pooled ones.
        public var reconnectWhenDroppedIdle = false

        public init(_ connectionString: String) {
            self.connectionString = connectionString
        }
    }

    // Everything below `thread` is touched only on `thread`.
    let thread: ConnectionThread
    let raw: OpaquePointer
    var statements: StatementCache
    var isClosed = false
    var listeners = NotificationListeners()
    let configuration: Configuration
    /// When the last operation on the connection started, and whether the one running
    /// now found the connection unused for `revalidationIdleTime` before it (see
    /// `revalidateIfIdle`). Measured from starts, so that an operation reads the clock
    /// once: after an operation that itself ran longer than the window, the next one
    /// checks the connection needlessly — one `poll`, next to a statement that long.
    var lastActive = ContinuousClock.now
    var wasIdle = false

    let cancelToken: CancelToken
    private let noticeSink: Unmanaged<NoticeSink>
    private let brokenFlag = Atomic<Bool>(false)
    private let idleFlag = Atomic<Bool>(true)
    public let logger: Logger
    /// The server's process id for this session, as `pg_backend_pid()` reports it.
    public private(set) var backendPID: Int32
    /// The server version, e.g. 150018 for 15.18.
    public let serverVersion: Int

    private init(raw: OpaquePointer, thread: ConnectionThread, configuration: Configuration, logger: Logger) {
        self.raw = raw
        self.thread = thread
        self.configuration = configuration
        self.logger = logger
        self.statements = StatementCache(capacity: configuration.statementCacheCapacity)
        self.cancelToken = CancelToken(PQgetCancel(raw))
        self.backendPID = PQbackendPID(raw)
        self.serverVersion = Int(PQserverVersion(raw))
        self.noticeSink = Unmanaged.passRetained(NoticeSink(logger: logger))
        PQsetNoticeReceiver(raw, noticeReceiver, noticeSink.toOpaque())
    }

    deinit {
        if !isClosed { PQfinish(raw) }
        cancelToken.replace(with: nil)
        noticeSink.release()
        thread.stop()
    }

    /// The connection's own thread as a task executor. Code that runs many statements on
    /// one connection can prefer it so that each statement runs inline instead of
    /// switching threads twice:
    ///
    /// ```swift
    /// try await withTaskExecutorPreference(connection.executor) { … }
    /// ```
    ///
    /// `PostgresPool.withConnection` does this for its body. Whatever else the body does
    /// runs on that thread too, so keep long computations elsewhere.
    public var executor: any TaskExecutor { thread }

    /// Opens a connection. Errors name host, port and database — never the password.
    public static func connect(_ configuration: Configuration, logger: Logger = Logger(label: "LibPQ")) async throws -> PostgresConnection {
        let thread = ConnectionThread(name: "LibPQ.conn")
        return try await withCheckedThrowingContinuation { continuation in
            thread.execute {
                let result = Result {
                    let raw = try openConnection(configuration)
                    return PostgresConnection(raw: raw, thread: thread, configuration: configuration, logger: logger)
                }
                if case .failure = result { thread.stop() }
                continuation.resume(with: result)
            }
        }
    }

    public static func connect(_ connectionString: String, logger: Logger = Logger(label: "LibPQ")) async throws -> PostgresConnection {
        try await connect(Configuration(connectionString), logger: logger)
    }

    private static func openConnection(_ configuration: Configuration) throws -> OpaquePointer {
        let target = ConnectionTarget(configuration.connectionString)
        // Defaults come first; expand_dbname=1 expands the string in place and its own
        // settings override those before it.
        let keys = ["connect_timeout", "fallback_application_name", "dbname"]
        let values = [String(configuration.connectTimeout), "stockroom", configuration.connectionString]
        let raw = withCStrings(keys) { keys in
            withCStrings(values) { values in PQconnectdbParams(keys, values, 1) }
        }
        guard let raw else { throw PostgresError(code: .connection, message: "could not connect to \(target): out of memory") }
        guard PQstatus(raw) == CONNECTION_OK else {
            let reason = String(cString: PQerrorMessage(raw)).trimmingTrailingNewlines()
            PQfinish(raw)
            var error = PostgresError(code: .connection, message: "could not connect to \(target): \(reason)")
            error.sqlState = .connectionFailure
            throw error
        }
        return raw
    }

    /// True once the connection to the server is lost; a pool replaces such connections.
    public var isBroken: Bool { brokenFlag.load(ordering: .relaxed) }

    /// True when no transaction was left open by the last operation; a pool closes
    /// connections returned in the middle of a transaction.
    public var isIdle: Bool { idleFlag.load(ordering: .relaxed) }

    /// Closes the connection after whatever is running on it finishes.
    public func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            thread.execute {
                if !self.isClosed {
                    self.listeners.finishAll(throwing: nil)
                    self.cancelToken.replace(with: nil)
                    PQfinish(self.raw)
                    self.isClosed = true
                    self.brokenFlag.store(true, ordering: .relaxed)
                    self.thread.stop()
                }
                continuation.resume()
            }
        }
    }

    // MARK: - Running operations on the connection's thread

    /// Runs `body` on the connection's thread — inline when the caller is already there —
    /// cancellable by the calling task and by `timeout`. `body` runs with exclusive use of
    /// `raw`.
    ///
    /// `nonisolated(nonsending)`: it runs on its caller's executor, where a plain
    /// nonisolated async function first asks the runtime to switch to the task's
    /// preferred executor (`swift_task_switch` and `getPreferredTaskExecutor` were 8% of
    /// LibPQ's CPU per point query). The public calls on top of it do not carry the
    /// attribute yet: with Swift 6.3.1, `query` marked so crashes at its entry when
    /// `PostgresPool.query`, a plain async method, calls it — a trigger not understood
    /// (docs/BENCHMARKS.md, 2026-12-03).
    nonisolated(nonsending) func perform<T: Sendable>(timeout: Duration? = nil, cancellable: Bool = true, _ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        let control = OperationControl(token: cancelToken)
        var timer: DispatchWorkItem?
        if let timeout {
            let item = DispatchWorkItem { control.cancel(.timeout(timeout)) }
            let (seconds, attoseconds) = timeout.components
            let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds), execute: item)
            timer = item
        }
        defer { timer?.cancel() }
        return try await withTaskCancellationHandler {
            if thread.isCurrent {
                return try run(body, control: control, cancellable: cancellable).get()
            }
            return try await withCheckedThrowingContinuation { continuation in
                thread.execute {
                    continuation.resume(with: self.run(body, control: control, cancellable: cancellable))
                }
            }
        } onCancel: {
            if cancellable { control.cancel(.task) }
        }
    }

    /// One operation, on the connection's thread.
    private func run<T>(_ body: (PostgresConnection) throws -> T, control: OperationControl, cancellable: Bool) -> Result<T, any Error> {
        if let reason = control.begin(), cancellable {
            return .failure(OperationControl.error(for: reason, underlying: nil))
        }
        let now = ContinuousClock.now
        wasIdle = now - lastActive >= Self.revalidationIdleTime
        lastActive = now
        var result = Result { () throws -> T in
            guard !isClosed else { throw PostgresError(code: .closed, message: "the connection is closed") }
            return try thread.blocking { try body(self) }
        }
        if !isClosed {
            if !listeners.isEmpty { deliverNotifications() }
            if PQstatus(raw) == CONNECTION_BAD { brokenFlag.store(true, ordering: .relaxed) }
            idleFlag.store(PQtransactionStatus(raw) == PQTRANS_IDLE, ordering: .relaxed)
        }
        if let reason = control.finish(), cancellable, case .failure(let error) = result {
            result = .failure(OperationControl.error(for: reason, underlying: error))
        }
        return result
    }

    /// The libpq error message of the connection, for failures that have no result.
    func connectionError(_ what: String) -> PostgresError {
        let reason = String(cString: PQerrorMessage(raw)).trimmingTrailingNewlines()
        var error = PostgresError(code: PQstatus(raw) == CONNECTION_BAD ? .connection : .unexpectedResponse, message: "\(what): \(reason)")
        if PQstatus(raw) == CONNECTION_BAD {
            error.sqlState = .connectionFailure
            brokenFlag.store(true, ordering: .relaxed)
        }
        return error
    }

    /// How long a connection must have been idle before a statement checks that the
    /// server is still there. The check is a `poll` — one more system call per statement
    /// than libpq itself makes (+9% on a local point query) — and a connection that
    /// answered a moment ago seldom needs it. Within this window a session the server
    /// ended fails its next statement instead, as it would have mid-statement, and a pool
    /// replaces it.
    static let revalidationIdleTime = Duration.milliseconds(1)

    /// Before a statement on an idle connection: if the server has gone away, notice it
    /// now rather than mid-statement, and reconnect when configured to.
    func revalidateIfIdle() throws {
        guard PQtransactionStatus(raw) == PQTRANS_IDLE, wasIdle else { return }
        // Data on an idle connection is a notice, a notification, or the FATAL message
        // and EOF of a terminated session. Reading until the socket is quiet (or EOF
        // breaks the connection) tells which; PQisBusy makes libpq parse what it read.
        var reads = 0
        while PQstatus(raw) == CONNECTION_OK, reads < 8, Socket.isReadable(PQsocket(raw)) {
            if PQconsumeInput(raw) == 0 { break }
            _ = PQisBusy(raw)
            reads += 1
        }
        guard PQstatus(raw) == CONNECTION_BAD else { return }
        guard configuration.reconnectWhenDroppedIdle else {
            throw connectionError("the connection was closed by the server")
        }
        logger.debug("reconnecting a connection the server dropped while idle", metadata: ["postgres.backend_pid": "\(backendPID)"])
        PQreset(raw)
        statements.reset()
        guard PQstatus(raw) == CONNECTION_OK else { throw connectionError("could not reconnect") }
        cancelToken.replace(with: PQgetCancel(raw))
        backendPID = PQbackendPID(raw)
        brokenFlag.store(false, ordering: .relaxed)
    }
}

/// host, port and database of a connection string, for error messages: parsed by libpq
/// itself so that the password never reaches a message.
struct ConnectionTarget: CustomStringConvertible {
    var host = "", port = "", database = ""

    init(_ connectionString: String) {
        guard let options = PQconninfoParse(connectionString, nil) else { return }
        defer { PQconninfoFree(options) }
        var option = options
        while let keyword = option.pointee.keyword {
            let value = option.pointee.val.map { String(cString: $0) } ?? ""
            switch String(cString: keyword) {
            case "host": if !value.isEmpty { host = value }
            case "hostaddr": if host.isEmpty { host = value }
            case "port": port = value
            case "dbname": database = value
            default: break
            }
            option += 1
        }
    }

    var description: String {
        "host=\(host.isEmpty ? "(default)" : host) port=\(port.isEmpty ? "(default)" : port) dbname=\(database.isEmpty ? "(default)" : database)"
    }
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var text = Substring(self)
        while let last = text.last, last.isNewline || last == " " { text = text.dropLast() }
        return String(text)
    }
}
