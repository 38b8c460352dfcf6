import Foundation
import LibPQ
public import Logging

/// Applies the migrations of a folder to a database: the runner behind `stockroom
/// migrate`, and a library a service can embed to migrate at start-up.
///
/// ```swift
/// let migrator = Migrator(databaseURL: url, configuration: .init(directory: URL(fileURLWithPath: "migrations")))
/// for applied in try await migrator.up() { logger.info("applied \(applied.version) in \(applied.duration)") }
/// ```
///
/// Each run holds a session-level advisory lock on a connection of its own, so any
/// number of runners may start at once: each migration is applied exactly once.
public struct Migrator: Sendable {
    /// One migration run, up or down.
    public struct Step: Sendable {
        public var version: MigrationVersion
        public var title: String
        public var path: String
        public var sql: String
        public var mode: TransactionMode
        public var duration: Duration = .zero
    }

    public enum DownTarget: Sendable, Equatable {
        /// The newest `n` applied versions.
        case steps(Int)
        /// Every applied version above this one (it stays applied).
        case to(MigrationVersion)
        case all
    }

    public enum Resolution: Sendable {
        /// The failed migration's changes were completed by hand: record it as applied.
        case applied
        /// Its changes were undone by hand: forget it, so `up` runs it again.
        case rolledBack
    }

    public let connectionString: String
    public let configuration: Configuration
    public let logger: Logger

    public init(databaseURL connectionString: String, configuration: Configuration, logger: Logger = Logger(label: "Migrations")) {
        self.connectionString = connectionString
        self.configuration = configuration
        self.logger = logger
    }

    /// Every version, from the files and the history, with its state.
    public func status() async throws -> [MigrationStatus] {
        let files = try MigrationDirectory.load(configuration.directory)
        return try await withConnection { connection in
            let history = try await MigrationHistory.open(on: connection, schema: configuration.historySchema, table: configuration.historyTable)
            // Read under the lock when it is free, so a `running` row then surely belongs
            // to a runner that died; when another runner holds it, the row is its work in
            // progress. Never waits.
            let lock = MigrationLock(connection: connection, objectID: try await MigrationLock.key(on: connection, for: history))
            let locked = try await lock.tryAcquire()
            let entries: [HistoryEntry]
            do {
                entries = try await history.entries()
            } catch {
                if locked { await lock.release() }
                throw error
            }
            if locked { await lock.release() }
            return MigrationStatus.compare(files: files, history: entries, runnerActive: !locked)
        }
    }

    /// For instances starting together (`serve --migrate`): when every file up to
    /// `version` (all of the folder's by default) is applied and nothing needs a person,
    /// returns at once, without queueing for the runner's lock behind the others;
    /// otherwise runs `up(to: version)`, which waits for it. Refuses as `up` does — a
    /// newer binary's migration that breaks older ones included.
    @discardableResult
    public func ensureSchema(atLeast version: MigrationVersion? = nil) async throws -> [Step] {
        let statuses = try await status()
        let behind = statuses.contains { status in
            switch status.state {
            case .applied, .newer: false
            case .pending: version.map { status.version <= $0 } ?? true
            case .failed, .running, .modified, .missing: true
            }
        }
        // Behind, or something to look at under the lock (a file another runner is
        // applying right now shows as running): `up` waits for the lock and checks.
        if behind { return try await up(to: version) }
        try statuses.checkConsistent(allowOutOfOrder: configuration.allowOutOfOrder, allowNewer: true)
        return []
    }

    /// Applied files whose checksum changed, or whose file is gone. Empty when all is well.
    public func verify() async throws -> [MigrationStatus] {
        try await status().filter { $0.state == .modified || $0.state == .missing }
    }

    /// Applies pending migrations in order, up to and including `target`. With `dryRun`,
    /// returns the plan without changing anything. `onStep` hears of each one as it ends.
    @discardableResult
    public func up(
        to target: MigrationVersion? = nil,
        dryRun: Bool = false,
        onStep: @Sendable (Step) -> Void = { _ in }
    ) async throws -> [Step] {
        let files = try MigrationDirectory.load(configuration.directory)
        try Self.check(target, in: files)
        return try await withLockedHistory(create: !dryRun) { connection, history in
            if !dryRun { try await recoverFailedIndexBuilds(files: files, history: history, on: connection) }
            let plan = try await pending(of: files, history: history, to: target)
            var steps: [Step] = []
            for migration in plan {
                var step = Step(version: migration.version, title: migration.title, path: migration.up.path, sql: migration.up.sql, mode: migration.up.mode)
                if !dryRun {
                    step.duration = try await run(migration.up, of: migration, .up, on: connection, history: history)
                    logger.info("applied migration", metadata: ["migration.version": "\(migration.version)", "migration.title": "\(migration.title)"])
                }
                onStep(step)
                steps.append(step)
            }
            return steps
        }
    }

    /// Rolls back applied migrations, newest first. Refuses before changing anything when
    /// a needed down file is missing.
    @discardableResult
    public func down(
        _ target: DownTarget,
        dryRun: Bool = false,
        onStep: @Sendable (Step) -> Void = { _ in }
    ) async throws -> [Step] {
        let files = try MigrationDirectory.load(configuration.directory)
        return try await withLockedHistory(create: false) { connection, history in
            let status = MigrationStatus.compare(files: files, history: try await history.entries())
            try status.checkConsistent(allowOutOfOrder: true, allowNewer: false)
            let applied = status.filter { $0.state == .applied }.map(\.version).sorted(by: >)
            let chosen: [MigrationVersion]
            switch target {
            case .steps(let n):
                guard n > 0 else { throw MigrationError(.unknownVersion, "--steps must be at least 1") }
                chosen = Array(applied.prefix(n))
            case .to(let version):
                guard version == MigrationVersion("0") || applied.contains(version) else {
                    throw MigrationError(.unknownVersion, "version \(version) is not applied; nothing to roll back to")
                }
                chosen = applied.filter { $0 > version }
            case .all:
                chosen = applied
            }
            let byVersion = Dictionary(files.map { ($0.version, $0) }, uniquingKeysWith: { a, _ in a })
            let withoutDown = chosen.compactMap { byVersion[$0] }.filter { $0.down == nil }
            if !withoutDown.isEmpty {
                let names = withoutDown.map { "\($0.version)_\($0.title).down.sql" }.joined(separator: ", ")
                throw MigrationError(.missingDown, "cannot roll back: no down file for \(names); nothing was changed")
            }
            var steps: [Step] = []
            for version in chosen {
                let migration = byVersion[version]!
                let down = migration.down!
                var step = Step(version: version, title: migration.title, path: down.path, sql: down.sql, mode: down.mode)
                if !dryRun {
                    step.duration = try await run(down, of: migration, .down, on: connection, history: history)
                    logger.info("rolled back migration", metadata: ["migration.version": "\(version)", "migration.title": "\(migration.title)"])
                }
                onStep(step)
                steps.append(step)
            }
            return steps
        }
    }

    /// Adopts a database whose schema was made another way (by hand, by another tool):
    /// records every file up to and including `version` as applied, with its current
    /// checksum, without running it. Refused when the history has any row already.
    /// Returns the versions recorded.
    @discardableResult
    public func baseline(through version: MigrationVersion) async throws -> [MigrationVersion] {
        let files = try MigrationDirectory.load(configuration.directory)
        guard files.contains(where: { $0.version == version }) else {
            throw MigrationError(.unknownVersion, "no migration file has version \(version)")
        }
        return try await withLockedHistory(create: true) { connection, history in
            guard try await history.entries().isEmpty else {
                throw MigrationError(.unknownVersion, "the database already has a migration history: baseline is for one that never had any; see `stockroom migrate status`")
            }
            let adopted = files.filter { $0.version <= version }
            try await connection.withTransaction { _ in
                for migration in adopted { try await history.record(migration, outcome: .applied, duration: nil) }
            }
            logger.info("baseline recorded", metadata: ["migration.version": "\(version)", "migrations": "\(adopted.count)"])
            return adopted.map(\.version)
        }
    }

    /// Records what a person decided about a migration that failed outside a transaction.
    public func resolve(_ version: MigrationVersion, as resolution: Resolution) async throws {
        try await withLockedHistory(create: false) { _, history in
            guard let entry = try await history.entries().first(where: { $0.version == version }) else {
                throw MigrationError(.unknownVersion, "version \(version) has no history row to resolve")
            }
            guard entry.outcome != .applied else {
                throw MigrationError(.unknownVersion, "version \(version) is applied, not failed; use `stockroom migrate down` to roll it back")
            }
            switch resolution {
            case .applied:
                // The file as it is now: a person who fixed it by hand to match what the
                // database holds must not see it refused as modified afterwards.
                let file = try MigrationDirectory.load(configuration.directory).first { $0.version == version }
                try await history.setOutcome(version, .applied, checksum: file?.up.checksum)
            case .rolledBack: _ = try await history.remove(version)
            }
        }
    }
}
