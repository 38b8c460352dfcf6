import Foundation

/// What one pending file did when `Migrator.rehearse` ran it against the database inside
/// a transaction that was then rolled back: how long each statement took, which
/// relations it locked and how, which it rewrote, and how big they are.
///
/// Read `locks` knowing how the rehearsal runs: every pending file in one transaction,
/// in order, since later files may need what earlier ones create. So a file lists the
/// locks it acquired or strengthened — not one an earlier file of the same rehearsal
/// already holds in that mode, which PostgreSQL hands it without a trace. Such a lock is
/// listed all the same, as ACCESS EXCLUSIVE marked `heldByEarlierFile`, when the file
/// rewrote the relation (which always takes it). In `stockroom migrate up` each file
/// commits on its own and takes all of its locks afresh.
public struct Rehearsal: Sendable, Codable, Equatable {
    public enum Outcome: Sendable, Equatable {
        /// Every statement of the file ran.
        case rehearsed
        /// A statement failed: the rest of the file, and every file after it, did not run.
        case failed(Failure)
        /// The file was not run at all, for `reason`.
        case notRehearsed(reason: String)
    }

    /// One statement that ran.
    public struct Statement: Sendable, Codable, Equatable {
        /// Where it starts in the file.
        public var line: Int
        /// Its first words ("ALTER TABLE", "CREATE INDEX"), to tell the statements apart.
        public var command: String
        public var durationMilliseconds: Double

        public var duration: Duration { .nanoseconds(Int64(durationMilliseconds * 1_000_000)) }
    }

    /// Why a statement failed, as the runner would report it.
    public struct Failure: Sendable, Codable, Equatable {
        /// The line the server's error points at, or the failing statement's first line.
        public var line: Int
        public var sqlState: String?
        /// `file:line: SQLSTATE …: message (hint: …)`, and for a lock timeout who blocked it.
        public var message: String
        /// It gave up on the rehearsal's `lock_timeout`: the migration would wait for a
        /// lock another session holds (`blockers`, when they were seen).
        public var waitsForLock: Bool
        public var blockers: [LockBlocker]
    }

    public var version: MigrationVersion
    public var title: String
    /// The up file.
    public var path: String
    public var outcome: Outcome
    /// The statements that ran, the failing one included.
    public var statements: [Statement] = []
    /// Relations the file locked, by the line of the statement that first took each lock.
    public var locks: [Lock] = []
    /// Relations that existed before the file and were rewritten by it (their data files
    /// replaced: `ALTER COLUMN … TYPE`, `TRUNCATE`, `CLUSTER`, the indexes of a rewritten
    /// table…), as `schema.name`.
    public var rewritten: [String] = []
    public var durationMilliseconds: Double = 0

    public var duration: Duration { .nanoseconds(Int64(durationMilliseconds * 1_000_000)) }

    /// The failure, when the outcome is one.
    public var failure: Failure? {
        if case .failed(let failure) = outcome { return failure }
        return nil
    }
}

/// In JSON, `{"status": "rehearsed" | "failed" | "not_rehearsed", "failure": {…}, "reason": "…"}`:
/// a flat object a deploy script can test with one key.
extension Rehearsal.Outcome: Codable {
    private enum CodingKeys: String, CodingKey {
        case status, failure, reason
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(String.self, forKey: .status) {
        case "rehearsed": self = .rehearsed
        case "failed": self = .failed(try container.decode(Rehearsal.Failure.self, forKey: .failure))
        case "not_rehearsed": self = .notRehearsed(reason: try container.decode(String.self, forKey: .reason))
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .status, in: container, debugDescription: "unknown rehearsal status \(other)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .rehearsed:
            try container.encode("rehearsed", forKey: .status)
        case .failed(let failure):
            try container.encode("failed", forKey: .status)
            try container.encode(failure, forKey: .failure)
        case .notRehearsed(let reason):
            try container.encode("not_rehearsed", forKey: .status)
            try container.encode(reason, forKey: .reason)
        }
    }
}

extension [Rehearsal] {
    /// The locks that stop a table's readers and writers (see `Lock.blocksTable`) on a
    /// table of more than `rows` rows — or of a number not known — with the file that
    /// takes each: what a deploy may refuse (`stockroom migrate plan --max-exclusive-rows`).
    public func tableBlockingLocks(aboveRows rows: Int64) -> [(rehearsal: Rehearsal, lock: Rehearsal.Lock)] {
        flatMap { rehearsal in
            rehearsal.locks.filter { $0.blocksTable && ($0.rows ?? .max) > rows }.map { (rehearsal, $0) }
        }
    }
}
