public import LibPQ

/// Every failure of the migration runner: a stable `code` to match on, and a message for
/// people that names the file or version and says what to do.
public struct MigrationError: Error, Sendable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// A file name that does not fit `<version>_<title>.up.sql` / `.down.sql`.
        public static let invalidFileName = Code(rawValue: "invalid_file_name")
        /// Two files claim one version (or a down file has no up file).
        public static let duplicateVersion = Code(rawValue: "duplicate_version")
        /// A file could not be read or lexed.
        public static let unreadableFile = Code(rawValue: "unreadable_file")
        /// A file runs something the runner cannot allow (it would drop the runner's lock).
        public static let unsupportedStatement = Code(rawValue: "unsupported_statement")
        /// An applied file changed since it was applied.
        public static let modified = Code(rawValue: "modified")
        /// An applied version has no file any more.
        public static let missingFile = Code(rawValue: "missing_file")
        /// A pending file is older than the newest applied one.
        public static let outOfOrder = Code(rawValue: "out_of_order")
        /// A migration that ran outside a transaction failed part-way: a person decides.
        public static let needsResolution = Code(rawValue: "needs_resolution")
        /// A migration's SQL failed; nothing of it remains (unless it ran outside a transaction).
        public static let migrationFailed = Code(rawValue: "migration_failed")
        /// A down migration is needed and has no file.
        public static let missingDown = Code(rawValue: "missing_down")
        /// Another runner held the lock for longer than the wait allowed.
        public static let lockTimeout = Code(rawValue: "lock_timeout")
        /// A newer binary applied a migration that marks itself as breaking older ones.
        public static let newerBinaryRequired = Code(rawValue: "newer_binary_required")
        /// A version given on the command line that is not known.
        public static let unknownVersion = Code(rawValue: "unknown_version")
        /// The database could not be reached or answered with an error outside a migration.
        public static let database = Code(rawValue: "database")
    }

    public let code: Code
    public let message: String
    /// The server's error, when the database is the cause.
    public var underlying: PostgresError?

    public init(_ code: Code, _ message: String, underlying: PostgresError? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String { message }
}
