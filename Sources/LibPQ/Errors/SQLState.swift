/// A five-character SQLSTATE code reported by the server.
///
/// Match on the named constants in `catch` clauses:
/// `catch let error as PostgresError where error.sqlState == .uniqueViolation`.
public struct SQLState: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// The two-character class, e.g. `23` for integrity constraint violations.
    public var errorClass: Substring { rawValue.prefix(2) }

    public var description: String {
        if let name = Self.names[self] { return "\(rawValue) (\(name))" }
        return rawValue
    }

    // Class 08 — connection exception
    public static let connectionException = SQLState("08000")
    public static let connectionFailure = SQLState("08006")
    // Class 0A — feature not supported
    public static let featureNotSupported = SQLState("0A000")
    // Class 22 — data exception
    public static let dataException = SQLState("22000")
    public static let stringDataRightTruncation = SQLState("22001")
    public static let numericValueOutOfRange = SQLState("22003")
    public static let invalidDatetimeFormat = SQLState("22007")
    public static let invalidParameterValue = SQLState("22023")
    public static let divisionByZero = SQLState("22012")
    public static let invalidTextRepresentation = SQLState("22P02")
    // Class 23 — integrity constraint violation
    public static let notNullViolation = SQLState("23502")
    public static let foreignKeyViolation = SQLState("23503")
    public static let uniqueViolation = SQLState("23505")
    public static let checkViolation = SQLState("23514")
    public static let exclusionViolation = SQLState("23P01")
    // Class 25 — invalid transaction state
    public static let activeSQLTransaction = SQLState("25001")
    public static let readOnlySQLTransaction = SQLState("25006")
    public static let inFailedSQLTransaction = SQLState("25P02")
    public static let idleInTransactionSessionTimeout = SQLState("25P03")
    // Class 26 — invalid SQL statement name
    public static let invalidSQLStatementName = SQLState("26000")
    // Class 40 — transaction rollback
    public static let serializationFailure = SQLState("40001")
    public static let deadlockDetected = SQLState("40P01")
    // Class 42 — syntax error or access rule violation
    public static let syntaxError = SQLState("42601")
    public static let insufficientPrivilege = SQLState("42501")
    public static let undefinedColumn = SQLState("42703")
    public static let undefinedFunction = SQLState("42883")
    public static let undefinedTable = SQLState("42P01")
    public static let duplicateTable = SQLState("42P07")
    public static let duplicateObject = SQLState("42710")
    // Class 53 — insufficient resources
    public static let tooManyConnections = SQLState("53300")
    // Class 55 — object not in prerequisite state
    public static let lockNotAvailable = SQLState("55P03")
    // Class 57 — operator intervention
    public static let queryCanceled = SQLState("57014")
    public static let adminShutdown = SQLState("57P01")
    public static let crashShutdown = SQLState("57P02")
    public static let cannotConnectNow = SQLState("57P03")
    // Class P0 — PL/pgSQL
    public static let raiseException = SQLState("P0001")

    static let names: [SQLState: String] = [
        .connectionException: "connection_exception", .connectionFailure: "connection_failure",
        .featureNotSupported: "feature_not_supported", .dataException: "data_exception",
        .stringDataRightTruncation: "string_data_right_truncation",
        .numericValueOutOfRange: "numeric_value_out_of_range",
        .invalidDatetimeFormat: "invalid_datetime_format", .invalidParameterValue: "invalid_parameter_value", .divisionByZero: "division_by_zero",
        .invalidTextRepresentation: "invalid_text_representation",
        .notNullViolation: "not_null_violation", .foreignKeyViolation: "foreign_key_violation",
        .uniqueViolation: "unique_violation", .checkViolation: "check_violation",
        .exclusionViolation: "exclusion_violation", .activeSQLTransaction: "active_sql_transaction",
        .readOnlySQLTransaction: "read_only_sql_transaction",
        .inFailedSQLTransaction: "in_failed_sql_transaction",
        .idleInTransactionSessionTimeout: "idle_in_transaction_session_timeout",
        .invalidSQLStatementName: "invalid_sql_statement_name",
        .serializationFailure: "serialization_failure", .deadlockDetected: "deadlock_detected",
        .syntaxError: "syntax_error", .insufficientPrivilege: "insufficient_privilege",
        .undefinedColumn: "undefined_column", .undefinedFunction: "undefined_function",
        .undefinedTable: "undefined_table", .duplicateTable: "duplicate_table",
        .duplicateObject: "duplicate_object", .tooManyConnections: "too_many_connections",
        .lockNotAvailable: "lock_not_available", .queryCanceled: "query_canceled",
        .adminShutdown: "admin_shutdown", .crashShutdown: "crash_shutdown",
        .cannotConnectNow: "cannot_connect_now", .raiseException: "raise_exception",
    ]
}
