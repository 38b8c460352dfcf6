/// The one error type of LibPQ: every failure, from the server or from the client side,
/// is a `PostgresError` with a stable `code`.
///
/// `description` is safe to log: it never contains bound values, the server's `detail`
/// (which quotes row contents, e.g. `Key (email)=(ann@example.com) already exists.`),
/// nor the primary message of class 22 (data exception) errors, which quote the offending
/// input. `debugDescription` shows everything, for debugging only.
public struct PostgresError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What went wrong, as a stable code to match on.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The server rejected a statement; see `sqlState` and the other server fields.
        public static let server = Code(rawValue: "server")
        /// Could not connect, or the connection broke.
        public static let connection = Code(rawValue: "connection")
        /// The query ran longer than its timeout and was cancelled on the server.
        public static let timeout = Code(rawValue: "timeout")
        /// No pooled connection became free within the acquire timeout.
        public static let poolExhausted = Code(rawValue: "pool_exhausted")
        /// The pool or connection was closed.
        public static let closed = Code(rawValue: "closed")
        /// A value could not be encoded as a parameter.
        public static let encoding = Code(rawValue: "encoding")
        /// A column could not be decoded as the requested Swift type.
        public static let decoding = Code(rawValue: "decoding")
        /// The server answered something the client did not expect.
        public static let unexpectedResponse = Code(rawValue: "unexpected_response")
        /// The statement needs what this API cannot do: COPY sent as a statement (through
        /// `simpleQuery` or `query`) instead of through `copyFrom`.
        public static let unsupported = Code(rawValue: "unsupported")
        /// A transaction's body caught an error and went on; the server rolled it back.
        public static let transactionAborted = Code(rawValue: "transaction_aborted")
        /// In a pipeline, a statement not run because an earlier one in its segment failed.
        public static let pipelineAborted = Code(rawValue: "pipeline_aborted")
        /// The connection broke while a COMMIT was on its way, and whether it committed
        /// could not be found out before the deadline (the database stayed unreachable).
        /// The transaction may or may not have committed: retry only what is idempotent.
        public static let commitOutcomeUnknown = Code(rawValue: "commit_outcome_unknown")
        /// A write reached a server that takes none (SQLSTATE 25006 from a standby or a
        /// read-only server): after a failover, the old primary. Nothing was written; the
        /// connection is not reused by a pool, and a retry on a new connection reaches
        /// the primary when the connection string asks for `target_session_attrs=read-write`.
        public static let readOnlyServer = Code(rawValue: "read_only_server")
        /// A call that is not valid in the connection's state, such as an isolation level
        /// for a transaction nested in another.
        public static let misuse = Code(rawValue: "misuse")
    }

    public var code: Code
    public var sqlState: SQLState?
    /// The server's primary message, or the client's explanation.
    public var message: String
    public var detail: String?
    public var hint: String?
    public var constraint: String?
    public var schema: String?
    public var table: String?
    public var column: String?
    public var dataType: String?
    /// 1-based character offset into the statement where the server located the error.
    public var position: Int?
    /// For text sent through `simpleQuery` (several statements at once): how many of its
    /// statements completed before this one failed, i.e. the failing statement's 0-based
    /// index. The server reports no position for many errors; this still says where.
    public var statementIndex: Int?
    public var context: String?
    public var severity: String?
    /// For `.commitOutcomeUnknown`: true when the transaction is certainly over —
    /// committed or not, the server restarted since — so that looking up what it would
    /// have written now tells which. False when it may still be running.
    public var transactionIsOver = false
    /// The server function that raised it: unlike the message, never translated, so it
    /// tells errors that share a SQLSTATE apart whatever `lc_messages` is.
    var routine: String?

    public init(code: Code, message: String, sqlState: SQLState? = nil) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
    }

    /// True for failures that a fresh transaction may not hit again.
    public var isRetryableTransactionFailure: Bool {
        sqlState == .serializationFailure || sqlState == .deadlockDetected
    }

    public var description: String {
        var parts = ["PostgresError.\(code)"]
        if let sqlState { parts.append("SQLSTATE \(sqlState)") }
        // Data exceptions quote the rejected input ("invalid input syntax for type
        // integer: \"…\""), which may be a bound value; keep it out of logs.
        if sqlState?.errorClass != "22" { parts.append(message) }
        if let constraint { parts.append("constraint \"\(constraint)\"") }
        if let table { parts.append("table \"\(table)\"") }
        if let column, code != .decoding { parts.append("column \"\(column)\"") }
        return parts.joined(separator: ": ")
    }

    public var debugDescription: String {
        var text = "PostgresError(code: \(code), sqlState: \(sqlState?.rawValue ?? "nil"), message: \(message)"
        if let detail { text += ", detail: \(detail)" }
        if let hint { text += ", hint: \(hint)" }
        if let constraint { text += ", constraint: \(constraint)" }
        if let table { text += ", table: \(table)" }
        if let column { text += ", column: \(column)" }
        if let position { text += ", position: \(position)" }
        return text + ")"
    }
}
