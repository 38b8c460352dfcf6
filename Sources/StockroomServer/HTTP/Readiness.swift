import LibPQ
import Logging
import Migrations
import Synchronization

/// Decides whether this instance should get traffic (`GET /readyz`): the database answers
/// a `SELECT 1` within the deadline, and every migration file of the binary's folder is
/// applied (versions a newer binary applied are fine, as `Migrator.ensureSchema` has it).
///
/// The schema check reads the folder and the history on a connection of its own, so its
/// answer is kept for `schemaCheckInterval`: a probe every second costs one `SELECT 1`
/// through the pool, not a connection. A check that could not be made is not kept.
/// Reasons are short and fixed: never an error's text, which may name a host or a user.
final class Readiness: Sendable {
    private let pool: PostgresPool
    private let migrator: Migrator?
    private let deadline: Duration
    private let schemaCheckInterval: Duration
    private let logger: Logger
    private let schema = Mutex<(checkedAt: ContinuousClock.Instant, reason: String?)?>(nil)

    init(pool: PostgresPool, migrator: Migrator?, deadline: Duration, schemaCheckInterval: Duration, logger: Logger) {
        self.pool = pool
        self.migrator = migrator
        self.deadline = deadline
        self.schemaCheckInterval = schemaCheckInterval
        self.logger = logger
    }

    /// nil when ready; otherwise why not, in a few words.
    func check() async -> String? {
        let pool = self.pool
        do {
            guard try await withDeadline(deadline, { try await pool.query("SELECT 1") }) != nil else {
                return "database did not answer within \(deadline.readable)"
            }
        } catch {
            logger.debug("readiness: the database is unreachable", metadata: ["error": "\(error)"])
            return "database unreachable"
        }
        return await schemaReason()
    }

    private func schemaReason() async -> String? {
        guard let migrator else { return nil }
        if let cached = schema.withLock({ $0 }), cached.checkedAt.duration(to: .now) < schemaCheckInterval {
            return cached.reason
        }
        let reason: String?
        do {
            // Connecting, then two reads: room for more than one round trip.
            guard let statuses = try await withDeadline(deadline * 3, { try await migrator.status() }) else {
                return "schema check did not finish within \((deadline * 3).readable)"
            }
            reason = Self.reason(statuses)
        } catch {
            logger.debug("readiness: the schema check failed", metadata: ["error": "\(error)"])
            return "schema check failed"
        }
        schema.withLock { $0 = (.now, reason) }
        return reason
    }

    /// What keeps the schema from being current, the first such version named.
    static func reason(_ statuses: [MigrationStatus]) -> String? {
        let behind = statuses.filter { $0.state != .applied && $0.state != .newer }
        guard let first = behind.first else { return nil }
        let more = behind.count > 1 ? " (and \(behind.count - 1) more)" : ""
        return "schema not current: migration \(first.version) (\(first.title)) \(describe(first.state))\(more)"
    }

    private static func describe(_ state: MigrationStatus.State) -> String {
        switch state {
        case .pending: "is not applied"
        case .failed: "failed part-way"
        case .running: "is being applied"
        case .modified: "changed since it was applied"
        case .missing: "is applied but its file is gone"
        case .applied, .newer: "is applied"
        }
    }
}

extension Duration {
    /// 1 s, 250 ms: for reasons a person reads.
    fileprivate var readable: String {
        let milliseconds = components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : "\(milliseconds) ms"
    }
}
