public import Foundation
public import LibPQ
import Stockroom

/// The `jobs` table (migration 0010): leasing due jobs and recording how they went.
/// Every statement is short and none spans the SMTP or HTTP call, as for webhooks.
public struct JobRepository: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    /// Notified by the trigger that writes jobs, to wake workers.
    public static let channel = "stockroom_jobs"

    /// Leases up to `limit` due jobs of `kinds` to `leaseToken` for `lease`: locked rows
    /// are skipped, not waited for.
    public func claim(kinds: Set<Job.Kind>, limit: Int, lease: Duration, leaseToken: String) async throws -> [Job] {
        guard limit > 0, !kinds.isEmpty else { return [] }
        let rows = try await mapping {
            try await pool.write("""
                UPDATE jobs j
                SET lease_token = \(leaseToken), lease_expires_at = now() + \(WebhookRepository.seconds(lease)) * interval '1 second', updated_at = now()
                FROM (
                    SELECT id FROM jobs
                    WHERE state = 'pending' AND next_attempt_at <= now() AND kind = ANY(\(kinds.map(\.rawValue).sorted())::text[])
                      AND (lease_expires_at IS NULL OR lease_expires_at <= now())
                    ORDER BY next_attempt_at, id
                    LIMIT \(limit)
                    FOR UPDATE SKIP LOCKED
                ) AS chosen
                WHERE j.id = chosen.id
                RETURNING j.id, j.kind, j.order_id, j.attempts, j.idempotency_key::text, j.created_at
                """)
        }
        return try rows.compactMap { row in
            guard let kind = Job.Kind(rawValue: try row[1, as: String.self]) else { return nil }
            return Job(id: try row[0, as: Int64.self], kind: kind, orderID: try row[2, as: Int64.self],
                       attempts: Int(try row[3, as: Int32.self]), idempotencyKey: try row[4, as: String.self], createdAt: try row[5, as: Date.self])
        }
    }

    /// Writes the outcome of an attempt and releases the lease: done, dead, or pending
    /// again after the schedule's next delay (dead after its last). Nothing is written
    /// when the lease was lost (it expired and another worker took the job over).
    public func record(_ job: Job, leaseToken: String, outcome: JobOutcome, schedule: RetrySchedule) async throws -> JobState {
        let state: JobState, delay: Double?, error: String?
        switch outcome {
        case .done: (state, delay, error) = (.done, nil, nil)
        case .failed(let message): (state, delay, error) = (.dead, nil, message)
        case .retry(let message):
            if let after = schedule.delay(afterFailedAttempts: job.attempts + 1) {
                (state, delay, error) = (.pending, WebhookRepository.seconds(after), message)
            } else {
                (state, delay, error) = (.dead, nil, message)
            }
        }
        try await mapping {
            _ = try await pool.write("""
                UPDATE jobs
                SET state = \(state.rawValue), attempts = attempts + 1, last_error = \(error.map { String($0.prefix(500)) }),
                    next_attempt_at = CASE WHEN \(delay)::float8 IS NULL THEN next_attempt_at ELSE now() + \(delay)::float8 * interval '1 second' END,
                    lease_token = NULL, lease_expires_at = NULL, updated_at = now(),
                    finished_at = CASE WHEN \(state.rawValue) = 'pending' THEN NULL ELSE now() END
                WHERE id = \(job.id) AND lease_token = \(leaseToken)
                """)
        }
        return state
    }

    /// Seconds until the next job of `kinds` falls due (or its lease expires); nil when
    /// none is pending.
    public func secondsUntilNextDue(kinds: Set<Job.Kind>) async throws -> Double? {
        try await mapping {
            try await pool.query("""
                SELECT extract(epoch FROM min(greatest(next_attempt_at, coalesce(lease_expires_at, next_attempt_at))) - clock_timestamp())::float8
                FROM jobs WHERE state = 'pending' AND kind = ANY(\(kinds.map(\.rawValue).sorted())::text[])
                """)[0][0, as: Double?.self]
        }.map { max(0, $0) }
    }

    /// Jobs nobody took up within `maxAge` of falling due — of being written, or of being
    /// retried by hand — (no worker handles their kind: say, no SMTP relay is configured)
    /// are dead rather than done late: an order confirmation a week after the order helps
    /// nobody. Returns how many.
    @discardableResult
    public func expireUntried(olderThan cutoff: Date) async throws -> Int {
        try await mapping {
            try await pool.write("""
                UPDATE jobs SET state = 'dead', last_error = 'not taken up in time: no worker handles this kind', updated_at = now(), finished_at = now()
                WHERE state = 'pending' AND attempts = 0 AND lease_token IS NULL AND next_attempt_at < \(cutoff)
                RETURNING 1
                """).count
        }
    }

    /// Jobs in id order after `after`, all of them or those in `state`, for admins.
    public func list(state: JobState? = nil, after: Int64 = 0, limit: Int = 50) async throws -> [JobRecord] {
        let rows = try await mapping {
            try await pool.query("""
                SELECT \(unsafeRaw: Self.recordColumns) FROM jobs
                WHERE id > \(after) AND (\(state?.rawValue)::text IS NULL OR state = \(state?.rawValue))
                ORDER BY id LIMIT \(limit)
                """)
        }
        return try rows.map(Self.record)
    }

    /// Puts a dead job back in line, due now with a fresh retry schedule, and wakes the
    /// workers. Its idempotency key stays: a refund the processor did make before the
    /// job died is not made twice, and a confirmation keeps its Message-ID. Throws
    /// `.notFound`, or `.invalidState` when the job is not dead.
    public func retry(id: Int64) async throws -> JobRecord {
        let results = try await mapping {
            try await pool.withConnection { connection in
                try await connection.pipelineTransaction([
                    """
                    UPDATE jobs
                    SET state = 'pending', attempts = 0, next_attempt_at = now(), lease_token = NULL, lease_expires_at = NULL,
                        finished_at = NULL, updated_at = now()
                    WHERE id = \(id) AND state = 'dead'
                    RETURNING \(unsafeRaw: Self.recordColumns)
                    """,
                    "SELECT pg_notify(\(Self.channel), '') FROM jobs WHERE id = \(id) AND state = 'pending'",
                    "SELECT state FROM jobs WHERE id = \(id)",
                ])
            }
        }
        if let row = results[0].first { return try Self.record(row) }
        guard let state = try results[2].first?[0, as: String.self] else { throw StockroomError(.notFound, "job not found") }
        throw StockroomError(.invalidState, "job \(id) is \(state); only a dead job can be retried")
    }

    /// A constant, spliced as SQL text.
    private static let recordColumns = """
        id, kind, order_id, state, attempts, CASE WHEN state = 'pending' THEN next_attempt_at END, last_error, created_at, finished_at
        """

    private static func record(_ row: PostgresRow) throws -> JobRecord {
        guard let kind = Job.Kind(rawValue: try row[1, as: String.self]), let state = JobState(rawValue: try row[3, as: String.self]) else {
            throw StockroomError(.unavailable, "a job of a kind or state this version does not know")
        }
        return JobRecord(
            id: try row[0, as: Int64.self], kind: kind, orderID: try row[2, as: Int64.self], state: state,
            attempts: Int(try row[4, as: Int32.self]), nextAttemptAt: try row[5, as: Date?.self], lastError: try row[6, as: String?.self],
            createdAt: try row[7, as: Date.self], finishedAt: try row[8, as: Date?.self]
        )
    }

    /// Deletes done and dead jobs finished before `cutoff`.
    @discardableResult
    public func pruneFinished(before cutoff: Date) async throws -> Int {
        try await mapping {
            try await pool.write("DELETE FROM jobs WHERE state <> 'pending' AND updated_at < \(cutoff) RETURNING 1").count
        }
    }

    /// One job's state and attempts, for tests and admin tools.
    public func job(kind: Job.Kind, orderID: Int64) async throws -> (state: JobState, attempts: Int, lastError: String?)? {
        try await mapping {
            try await pool.query("SELECT state, attempts, last_error FROM jobs WHERE kind = \(kind.rawValue) AND order_id = \(orderID)").first.map { row in
                (JobState(rawValue: try row[0, as: String.self]) ?? .pending, Int(try row[1, as: Int32.self]), try row[2, as: String?.self])
            }
        }
    }

    private func mapping<T>(isolation actor: isolated (any Actor)? = #isolation, _ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as StockroomError { throw error } catch { throw StockroomError.mapping(error) }
    }
}

public enum JobState: String, Sendable, Encodable {
    case pending, done, dead
}
