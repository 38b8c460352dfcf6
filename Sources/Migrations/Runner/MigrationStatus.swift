public import Foundation

/// Where one version stands, comparing the files with the history table.
public struct MigrationStatus: Sendable, Equatable {
    public enum State: String, Sendable {
        /// Applied, and its file is unchanged.
        case applied
        /// A file not applied yet.
        case pending
        /// It ran outside a transaction and failed (or its runner died) part-way.
        case failed
        /// Another runner is applying it outside a transaction right now.
        case running
        /// Applied, but its file changed since.
        case modified
        /// Applied, but its file is gone.
        case missing
        /// Applied by a newer deploy: newer than every file this binary has. An older
        /// instance still running, or restarting, during a rolling deploy (or after a
        /// rollback of the binary) sees these; it applies nothing over them and goes on.
        case newer
    }

    public var version: MigrationVersion
    public var title: String
    public var state: State
    public var appliedAt: Date?
    /// The file, when there is one.
    public var path: String?
    /// Pending, yet older than the newest applied version.
    public var outOfOrder = false
    /// What went wrong, for failed migrations.
    public var error: String?
    /// The version was applied from a file marked `-- stockroom:breaks-older-binaries`.
    public var breaksOlderBinaries = false

    /// Anything but an applied, unchanged file (or a newer deploy's) needs a person or a
    /// run of `up`.
    public var needsAttention: Bool { state != .applied && state != .newer }

    /// Files and history side by side, by version. A `running` row is only running while
    /// `runnerActive` (another runner holds the lock); otherwise its runner died: failed.
    public static func compare(files: [Migration], history: [HistoryEntry], runnerActive: Bool = false) -> [MigrationStatus] {
        let byVersion = Dictionary(files.map { ($0.version, $0) }, uniquingKeysWith: { a, _ in a })
        let recorded = Dictionary(history.map { ($0.version, $0) }, uniquingKeysWith: { a, _ in a })
        let newestApplied = history.filter { $0.outcome == .applied }.map(\.version).max()
        let newestFile = byVersion.keys.max()
        var result: [MigrationStatus] = []
        for version in Set(byVersion.keys).union(recorded.keys).sorted() {
            let file = byVersion[version]
            guard let entry = recorded[version] else {
                let outOfOrder = newestApplied.map { version < $0 } ?? false
                result.append(MigrationStatus(version: version, title: file!.title, state: .pending, path: file!.up.path, outOfOrder: outOfOrder))
                continue
            }
            let state: State = switch entry.outcome {
            case .failed: .failed
            case .running: runnerActive ? .running : .failed
            case .applied where file == nil:
                // Past the newest file: a newer binary's. Below it: a file deleted.
                newestFile.map { version > $0 } ?? false ? .newer : .missing
            case .applied: file!.up.checksum == entry.checksum ? .applied : .modified
            }
            result.append(MigrationStatus(version: version, title: file?.title ?? entry.title, state: state, appliedAt: entry.appliedAt, path: file?.up.path, error: entry.error, breaksOlderBinaries: entry.breaksOlderBinaries))
        }
        return result
    }
}

extension [MigrationStatus] {
    /// Refuses to change the schema while the history does not match the files; each
    /// message names the file and what to do. Versions a newer binary applied are
    /// tolerated by `up` (`allowNewer`), not by `down`, which cannot undo them.
    func checkConsistent(allowOutOfOrder: Bool, allowNewer: Bool) throws(MigrationError) {
        for status in self {
            let name = status.path.map { ($0 as NSString).lastPathComponent } ?? "version \(status.version) (\(status.title))"
            switch status.state {
            case .failed, .running:
                throw MigrationError(.needsResolution, """
                    migration \(status.version) (\(status.title)) ran outside a transaction and failed part-way (\(status.error ?? "its runner stopped before it finished")). \
                    Inspect the database, finish or undo its statements by hand, then record what you decided: \
                    `stockroom migrate resolve \(status.version) --applied` or `stockroom migrate resolve \(status.version) --rolled-back`
                    """)
            case .modified:
                throw MigrationError(.modified, "\(name) was changed after it was applied (checksum differs). Restore the applied version of the file and put the change in a new migration (`stockroom migrate new <title>`)")
            case .missing:
                throw MigrationError(.missingFile, "version \(status.version) (\(status.title)) is applied but its file is gone from the migrations folder. Restore the file, or roll the version back before removing it")
            case .pending where status.outOfOrder && !allowOutOfOrder:
                throw MigrationError(.outOfOrder, "\(name) is pending but older than the newest applied migration (a late merge?). Apply it deliberately with --allow-out-of-order, or renumber it after the newest")
            case .newer where status.breaksOlderBinaries:
                throw MigrationError(.newerBinaryRequired, "version \(status.version) (\(status.title)) was applied by a newer binary and marks itself as breaking older ones (\(MigrationScript.breaksOlderBinariesDirective)): this binary must not run against this database; deploy one that has that migration")
            case .newer where !allowNewer:
                throw MigrationError(.missingFile, "version \(status.version) (\(status.title)) was applied by a newer binary, which this one has no file for: roll back with that binary first")
            case .pending, .applied, .newer:
                break
            }
        }
    }
}
