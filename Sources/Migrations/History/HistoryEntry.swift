public import Foundation

/// One row of the history table.
public struct HistoryEntry: Sendable, Equatable {
    public enum Outcome: String, Sendable {
        /// Being applied outside a transaction right now — or, seen by the lock holder,
        /// by a runner that died midway: then it counts as failed.
        case running
        case applied
        case failed
    }

    public var version: MigrationVersion
    public var title: String
    public var checksum: String
    public var outcome: Outcome
    public var appliedAt: Date
    public var duration: Duration?
    public var error: String?
    /// The file said `-- stockroom:breaks-older-binaries`: binaries without it must not
    /// run against this database.
    public var breaksOlderBinaries = false
}
