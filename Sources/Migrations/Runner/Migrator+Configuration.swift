public import Foundation

extension Migrator {
    /// Where the files are, where the history goes, and how long to wait.
    public struct Configuration: Sendable {
        public var directory: URL
        /// The history table, created in the current schema (the first schema of the
        /// search path that exists) and always addressed there.
        public var historyTable = "stockroom_migrations"
        /// `lock_timeout` for the migrations' statements: a migration stuck behind a long
        /// transaction fails fast instead of stalling the traffic queued behind it.
        public var lockTimeout: Duration? = .seconds(5)
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
