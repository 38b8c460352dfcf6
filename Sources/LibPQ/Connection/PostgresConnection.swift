internal import CLibPQ
internal import Dispatch
internal import Foundation
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

        // MARK: Time limits
        //
        // None of these is set for a single connection, which a migration or an admin
        // task may hold for long statements on purpose; `PostgresPool.Configuration`
        // sets all of them. nil leaves the server's own setting.

        /// The server's `statement_timeout` for the session: it ends any statement that
        /// runs longer with SQLSTATE 57014.
        public var statementTimeout: Duration?
        /// The server's `lock_timeout`: a statement that waits longer for a lock fails
        /// with SQLSTATE 55P03 instead of queueing behind the holder.
        public var lockTimeout: Duration?
        /// The server's `idle_in_transaction_session_timeout`: it ends the session of a
        /// client that left a transaction open and went quiet, releasing its locks.
        public var idleInTransactionSessionTimeout: Duration?
        /// More run-time parameters for the session, set in the startup packet like the
        /// limits above (`-c name=value`), so they survive reconnects: custom settings
        /// such as `stockroom.low_stock_threshold` that triggers read.
        public var parameters: [String: String] = [:]
        /// The client's own deadline for an operation that sets no `timeout` of its own,
        /// for when the server cannot end it: a frozen backend, a network gone silent.
        /// At the deadline LibPQ sends a cancel; `cancelGrace` later it shuts the socket,
        /// marks the connection broken and resumes the waiting task with `.timeout`.
        /// When nil, `statementTimeout` plus half a second (the server's own limit
        /// normally fires first), or no deadline at all when that is nil too.
        public var operationTimeout: Duration?
        /// How long the server gets to end a statement after a cancel request before the
        /// connection is cut off. Also the longest a connection waits for a cancel
        /// request to settle before it is reused; one still unsettled then breaks it.
        public var cancelGrace: Duration = .seconds(1)
        /// When the connection breaks during a COMMIT, how long to keep trying to ask
        /// the server whether it committed (see `withTransaction`) before giving up with
        /// `.commitOutcomeUnknown`. Long enough for a restart or a failover.
        public var commitOutcomeTimeout: Duration = .seconds(15)
        /// TCP keepalives, so that a peer that vanished (a partition, a crashed host)
        /// is noticed on an idle connection too. nil leaves the system's defaults.
        public var keepalives: Keepalives? = Keepalives()
        /// `tcp_user_timeout`: how long sent data may stay unacknowledged before the
        /// kernel gives the connection up. nil leaves the system's default (about 15
        /// minutes of retransmissions on Linux).
        public var tcpUserTimeout: Duration? = .seconds(20)

        public struct Keepalives: Sendable, Equatable {
            /// Idle time before the first probe, time between probes, and how many
            /// unanswered probes end the connection: 10 + 5 × 3 = 25 s by default.
            public var idle: Duration = .seconds(10)
            public var interval: Duration = .seconds(5)
            public var count = 3
            public init(idle: Duration = .seconds(10), interval: Duration = .seconds(5), count: Int = 3) {
                self.idle = idle
                self.interval = interval
                self.count = count
            }
        }

        /// The deadline of an operation that sets none.
        var defaultDeadline: Duration? {
            operationTimeout ?? statementTimeout.map { $0 + .milliseconds(500) }
        }

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
    /// Set when a statement of the running operation was refused with SQLSTATE 25006:
    /// whether the server itself is read-only is known only once the operation has read
    /// everything up to its ReadyForQuery, before which the server reports a setting
    /// changed by a reload (see `run`).
    var sawReadOnlyRefusal = false

    let cancelToken: CancelToken
    /// The socket as other threads see it: broken or not, and a way to cut it off.
    let socket = ConnectionSocket()
    /// Operations in flight, for the watchdog that enforces their deadlines.
    let watch = OperationWatch()
    private let noticeSink: Unmanaged<NoticeSink>
    private let idleFlag = Atomic<Bool>(true)
    private let readOnlyServerFlag = Atomic<Bool>(false)
    /// How deep `withTransaction` calls are nested, to name their savepoints.
    let transactionDepth = Atomic<Int>(0)
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
        socket.adopt(PQsocket(raw))
        PQsetNoticeReceiver(raw, noticeReceiver, noticeSink.toOpaque())
    }

    deinit {
        socket.release()
        if !isClosed { Self.finish(raw) }
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

    /// A word of the startup `options`, where spaces separate arguments: a backslash
    /// escapes spaces and backslashes (libpq's and the server's rule).
    static func escapedOption(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if character == " " || character == "\\" { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }

    public static func connect(_ connectionString: String, logger: Logger = Logger(label: "LibPQ")) async throws -> PostgresConnection {
        try await connect(Configuration(connectionString), logger: logger)
    }

    private static func openConnection(_ configuration: Configuration) throws -> OpaquePointer {
        _ = OpenSSLExitHandler.disabled  // before libpq first uses OpenSSL
        let target = try ConnectionTarget(parsing: configuration.connectionString)
        // Defaults come first; expand_dbname=1 expands the string in place and its own
        // settings override those before it. Those after it override the string's.
        var keys = ["connect_timeout", "fallback_application_name"]
        var values = [String(configuration.connectTimeout), "stockroom"]
        if let keepalives = configuration.keepalives {
            keys += ["keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count"]
            values += ["1", String(max(1, keepalives.idle.components.seconds)), String(max(1, keepalives.interval.components.seconds)), String(keepalives.count)]
        }
        if let timeout = configuration.tcpUserTimeout {
            keys.append("tcp_user_timeout")
            values.append(String(timeout.milliseconds))
        }
        keys.append("dbname")
        values.append(configuration.connectionString)
        // Text comes back as UTF-8 whatever the server's or the string's encoding:
        // `String` decoding assumes it.
        keys.append("client_encoding")
        values.append("UTF8")
        // The time limits go in the startup packet, so they hold from the first
        // statement and survive a reconnect (PQreset sends the same packet). After the
        // string's own `options`: the configuration wins, and the client's deadlines
        // match the server's limits.
        var settings: [String] = []
        for (name, value) in [
            ("statement_timeout", configuration.statementTimeout),
            ("lock_timeout", configuration.lockTimeout),
            ("idle_in_transaction_session_timeout", configuration.idleInTransactionSessionTimeout),
        ] {
            if let value { settings.append("-c \(name)=\(value.milliseconds)") }
        }
        for (name, value) in configuration.parameters.sorted(by: { $0.key < $1.key }) {
            settings.append("-c \(Self.escapedOption(name))=\(Self.escapedOption(value))")
        }
        if !settings.isEmpty {
            keys.append("options")
            values.append(([target.options].compactMap { $0 } + settings).joined(separator: " "))
        }
        let raw = withCStrings(keys) { keys in
            withCStrings(values) { values in PQconnectdbParams(keys, values, 1) }
        }
        guard let raw else { throw PostgresError(code: .connection, message: "could not connect to \(target): out of memory") }
        guard PQstatus(raw) == CONNECTION_OK else {
            let reason = target.redacting(String(cString: PQerrorMessage(raw)).trimmingTrailingNewlines())
            finish(raw)
            var error = PostgresError(code: .connection, message: "could not connect to \(target): \(reason)")
            error.sqlState = .connectionFailure
            throw error
        }
        return raw
    }

    /// `PQfinish` without blocking: it sends a goodbye first, which in blocking mode could
    /// wait for ever on a full socket to a server that stopped reading.
    static func finish(_ raw: OpaquePointer) {
        PQsetnonblocking(raw, 1)
        PQfinish(raw)
    }

    /// True once the connection to the server is lost; a pool replaces such connections.
    public var isBroken: Bool { socket.isBroken }

    /// The socket's file descriptor, -1 when closed: for tests and diagnostics.
    var socketDescriptor: Int32 { socket.currentDescriptor }

    /// True when no transaction was left open by the last operation; a pool closes
    /// connections returned in the middle of a transaction.
    public var isIdle: Bool { idleFlag.load(ordering: .relaxed) }

    /// True once a statement failed because the server takes no writes: it is a standby
    /// (`in_hot_standby`) or read-only (`default_transaction_read_only`). After a
    /// failover the old primary may come back as a standby, and a session that reaches
    /// it must not be kept for writes: a pool closes such a connection, so the next one
    /// finds the primary again (`target_session_attrs=read-write`).
    public var isOnReadOnlyServer: Bool { readOnlyServerFlag.load(ordering: .relaxed) }

    /// Closes the connection after whatever is running on it finishes, and returns once
    /// its thread has exited too: a program may exit right after.
    public func close() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            thread.execute {
                if !self.isClosed {
                    self.listeners.finishAll(throwing: nil)
                    self.cancelToken.replace(with: nil)
                    self.socket.release()
                    Self.finish(self.raw)
                    self.isClosed = true
                    self.socket.markBroken()
                    self.thread.stop()
                }
                continuation.resume()
            }
        }
        await thread.join()
    }

    // MARK: - Running operations on the connection's thread

    /// Runs `body` on the connection's thread — inline when the caller is already there —
    /// with exclusive use of `raw`, within a deadline: `timeout`, or the configuration's
    /// (see `Configuration.operationTimeout`). Cancelling the calling task cancels it too,
    /// unless `cancellable` is false (transaction control, which must run to its end);
    /// the deadline holds either way. See `OperationControl` for what happens at the
    /// deadline.
    ///
    /// `nonisolated(nonsending)`: it runs on its caller's executor, where a plain
    /// nonisolated async function first asks the runtime to switch to the task's
    /// preferred executor (`swift_task_switch` and `getPreferredTaskExecutor` were 8% of
    /// LibPQ's CPU per point query). `query`, the hot public call, is marked too: it
    /// saves two task switches per statement. docs/NONSENDING-CRASH.md explains the crash
    /// once blamed on the attribute: a caller SwiftPM had not recompiled.
    ///
    /// With `abandonable` false, the task waits for the thread even past the hard stop
    /// (which shuts the socket, so libpq returns at once): for a COMMIT, whose result
    /// must be looked at — a broken connection there is not "not committed".
    nonisolated(nonsending) func perform<T: Sendable>(timeout: Duration? = nil, cancellable: Bool = true, abandonable: Bool = true, _ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        if thread.isCurrent {
            return try await performHere(timeout: timeout, cancellable: cancellable, body)
        }
        let control = watchedControl(timeout: timeout)
        defer { watch.remove(control) }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let resumption = Resumption(continuation)
                if abandonable { control.onAbandon { resumption.resume(with: .failure($0)) } }
                thread.execute {
                    resumption.resume(with: self.run(body, control: control))
                }
            }
        } onCancel: {
            if cancellable { control.cancel() }
        }
    }

    /// `perform` for a caller already on the connection's thread (it prefers the
    /// connection's executor): `body` runs inline, so it need not escape. A hot caller
    /// (`query`) checks `thread.isCurrent` and passes its closure here directly: passed
    /// to `perform`, the closure and what it captures are copied to the heap per call.
    nonisolated(nonsending) func performHere<T>(timeout: Duration? = nil, cancellable: Bool = true, _ body: (PostgresConnection) throws -> T) async throws -> T {
        assert(thread.isCurrent, "performHere runs on the connection's own thread only")
        let control = watchedControl(timeout: timeout)
        defer { watch.remove(control) }
        return try await withTaskCancellationHandler {
            try run(body, control: control).get()
        } onCancel: {
            if cancellable { control.cancel() }
        }
    }

    /// A new operation's control, already watched for its deadline; the caller removes it
    /// from `watch` when the operation is over.
    private func watchedControl(timeout: Duration?) -> OperationControl {
        let control = OperationControl(limit: timeout ?? configuration.defaultDeadline, grace: configuration.cancelGrace, token: cancelToken, socket: socket)
        watch.add(control)
        return control
    }

    /// One operation, on the connection's thread.
    private func run<T>(_ body: (PostgresConnection) throws -> T, control: OperationControl) -> Result<T, any Error> {
        if let reason = control.begin() {
            return .failure(OperationControl.error(for: reason, underlying: nil))
        }
        let now = ContinuousClock.now
        wasIdle = now - lastActive >= Self.revalidationIdleTime
        lastActive = now
        var result = Result { () throws -> T in
            guard !isClosed else { throw PostgresError(code: .closed, message: "the connection is closed") }
            return try thread.blocking { try body(self) }
        }
        let (reason, sentCancel) = control.finish()
        if sentCancel {
            // Not reused while a cancel request may still land on its next statement.
            let deadline = max(control.deadline ?? now, .now) + control.grace
            if !cancelToken.waitUntilSettled(before: deadline) {
                logger.debug("discarding a connection whose cancel request did not settle", metadata: ["postgres.backend_pid": "\(backendPID)"])
                socket.sever()
            }
        }
        if !isClosed {
            if !listeners.isEmpty { deliverNotifications() }
            if PQstatus(raw) == CONNECTION_BAD {
                socket.markBroken()
                socket.release()  // libpq closed its descriptor: let the server see the end
            }
            if PQclientEncoding(raw) != Self.utf8Encoding, PQstatus(raw) == CONNECTION_OK {
                // `SET client_encoding` would make every later String decode wrong.
                logger.warning("discarding a connection whose client_encoding was changed from UTF8")
                socket.sever()
                if case .success = result {
                    result = .failure(PostgresError(code: .unexpectedResponse, message: "client_encoding was changed from UTF8; LibPQ reads text as UTF-8 only, so the connection was closed"))
                }
            }
            idleFlag.store(PQtransactionStatus(raw) == PQTRANS_IDLE, ordering: .relaxed)
        }
        if let reason, case .failure(let error) = result {
            result = .failure(OperationControl.error(for: reason, underlying: error))
        }
        if sawReadOnlyRefusal {
            sawReadOnlyRefusal = false
            if !isClosed, serverIsReadOnly { readOnlyServerFlag.store(true, ordering: .relaxed) }
        }
        if case .failure(let failure) = result, let error = failure as? PostgresError {
            result = .failure(refinedReadOnlyRefusal(error))
        }
        return result
    }

    /// A refusal to write (25006) from a server that is read-only, rather than in a
    /// read-only transaction the caller asked for: `.readOnlyServer`, not a bug of the
    /// caller's but a server that stopped being the primary. For errors returned as
    /// values by an operation (a pipeline's), once it has ended.
    func refinedReadOnlyRefusal(_ error: PostgresError) -> PostgresError {
        guard error.code == .server, error.sqlState == .readOnlySQLTransaction, isOnReadOnlyServer else { return error }
        var refined = error
        refined.code = .readOnlyServer
        return refined
    }

    /// What the server last reported (ParameterStatus, PostgreSQL 14+): a standby, or
    /// writes refused to every transaction of the session.
    private var serverIsReadOnly: Bool {
        func reported(_ name: String) -> String? {
            PQparameterStatus(raw, name).map { String(cString: $0) }
        }
        return reported("in_hot_standby") == "on" || reported("default_transaction_read_only") == "on"
    }

    /// libpq's number for UTF8 (`pg_char_to_encoding("UTF8")`), found once.
    static let utf8Encoding = pg_char_to_encoding("UTF8")

    /// The libpq error message of the connection, for failures that have no result.
    func connectionError(_ what: String) -> PostgresError {
        let reason = String(cString: PQerrorMessage(raw)).trimmingTrailingNewlines()
        var error = PostgresError(code: PQstatus(raw) == CONNECTION_BAD ? .connection : .unexpectedResponse, message: "\(what): \(reason)")
        if PQstatus(raw) == CONNECTION_BAD {
            error.sqlState = .connectionFailure
            socket.markBroken()
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
        socket.release()  // PQreset closes this socket and opens another
        PQreset(raw)
        statements.reset()
        guard PQstatus(raw) == CONNECTION_OK else { throw connectionError("could not reconnect") }
        cancelToken.replace(with: PQgetCancel(raw))
        backendPID = PQbackendPID(raw)
        socket.adopt(PQsocket(raw))
    }
}

/// host, port and database of a connection string, for error messages, and its own
/// `options`: parsed by libpq itself, so that the password never reaches a message.
struct ConnectionTarget: CustomStringConvertible {
    var host = "", port = "", database = ""
    var options: String?
    private var password: String?

    /// Throws for a malformed string, with libpq's reason minus anything it quotes: for
    /// a bad percent-encoding, say, it quotes the token, which may be the password.
    init(parsing connectionString: String) throws {
        // Without "=" or a URI prefix, libpq takes the whole string as a database name.
        let expands = connectionString.contains("=") || connectionString.hasPrefix("postgres://") || connectionString.hasPrefix("postgresql://")
        guard expands else {
            database = connectionString
            return
        }
        var message: UnsafeMutablePointer<CChar>?
        guard let parsed = PQconninfoParse(connectionString, &message) else {
            let reason = message.map { String(cString: $0).trimmingTrailingNewlines() } ?? "out of memory"
            if let message { PQfreemem(message) }
            var error = PostgresError(code: .connection, message: "invalid connection string: \(Self.withoutQuotes(reason))")
            error.sqlState = .connectionException
            throw error
        }
        defer { PQconninfoFree(parsed) }
        var option = parsed
        while let keyword = option.pointee.keyword {
            let value = option.pointee.val.map { String(cString: $0) } ?? ""
            switch String(cString: keyword) {
            case "host": if !value.isEmpty { host = value }
            case "hostaddr": if host.isEmpty { host = value }
            case "port": port = value
            case "dbname": database = value
            case "options": if !value.isEmpty { options = value }
            case "password": if !value.isEmpty { password = value }
            default: break
            }
            option += 1
        }
    }

    init(_ connectionString: String) {
        self = (try? ConnectionTarget(parsing: connectionString)) ?? ConnectionTarget()
    }

    private init() {}

    /// A libpq message with the password, should it appear, blotted out.
    func redacting(_ message: String) -> String {
        guard let password, password.count >= 3 else { return message }
        return message.replacingOccurrences(of: password, with: "***")
    }

    /// `invalid percent-encoded token: "p%zz"` → `invalid percent-encoded token: "…"`.
    static func withoutQuotes(_ message: String) -> String {
        var result = ""
        var quoted = false
        for character in message {
            if character == "\"" {
                if !quoted { result += "\"…" } else { result.append("\"") }
                quoted.toggle()
            } else if !quoted {
                result.append(character)
            }
        }
        if quoted { result.append("\"") }
        return result
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
