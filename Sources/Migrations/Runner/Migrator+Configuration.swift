public import Foundation

extension Migrator {
    /// Where the files are, where the history goes, and how long to wait.
    public struct Configuration: Sendable {
        public var directory: URL
        /// The history table's name.
        public var historyTable = "stockroom_migrations"
        /// The schema the history table lives in, whatever the role's `search_path`: two
        /// roles with different search paths must not keep two histories of one
        /// database (nor take two different runner locks). nil keeps it in the
        /// connection's current schema (the first of its search path that exists), for
        /// a history per schema chosen by search path — one per tenant, say.
        public var historySchema: String? = "public"
        /// `lock_timeout` for the migrations' statements: a migration stuck behind a long
        /// transaction fails fast instead of stalling the traffic queued behind it.
        public var lockTimeout: Duration? = .seconds(5)
        /// How many times a transactional file that failed on `lock_timeout` is run
        /// again — safe, since its transaction rolled back — after a pause that doubles
        /// from `lockRetryBackoff` (with jitter). Whoever blocked it is logged, and named
        /// in the error when it finally fails (see `watchingLockWaits`).
        public var lockRetries = 3
        public var lockRetryBackoff: Duration = .seconds(1)
        /// `statement_timeout` for the migrations' statements; none by default.
        public var statementTimeout: Duration?
        /// How long to wait for another runner to finish.
        public var lockWait: Duration = .seconds(120)
        /// Apply pending files older than the newest applied one instead of refusing.
        public var allowOutOfOrder = false

        public init(directory: URL) {
            self.directory = directory
        }
    }
}
