public import Foundation
public import LibPQ

/// The outbox (migration 0008): reading events, numbering them once committed, pruning.
///
/// Events are written by triggers in the transactions of the changes they record; this
/// repository never writes one. Numbering is `sequence()`'s job: run it after changes
/// commit (the service does, at once after its own writes, and every second for writes
/// made elsewhere), and events become readable in the order they became visible.
public struct EventRepository: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    /// The channel `sequence()` notifies with the last id it gave, for listeners on any
    /// instance (`LISTEN stockroom_events`).
    public static let channel = "stockroom_events"
    /// At most this many events are numbered per statement.
    public static let sequenceBatch = 1000

    /// Events after `after`, oldest first, that `principal` may see: admins every event,
    /// customers those of their own orders. `nil` reads as an admin, for the service's
    /// own delivery.
    public func read(after: Int64 = 0, limit: Int = 100, as principal: Principal?) async throws -> [Event] {
        let limit = try Validate.limit(limit)
        let after = max(0, after)
        let user: Int64? = principal.flatMap { $0.isAdmin ? nil : $0.userID }
        let rows = try await mappingErrors {
            try await pool.query(Self.select(where: "e.id > \(after) AND (\(user)::int8 IS NULL OR e.user_id = \(user)) ORDER BY e.id LIMIT \(limit)"))
        }
        return try rows.compactMap(Self.event(from:))
    }

    /// The newest id given, 0 when none.
    public func lastID() async throws -> Int64 {
        try await mappingErrors {
            try await pool.query("SELECT last_id FROM event_counter")[0][0, as: Int64.self]
        }
    }

    /// The outbox's lag: committed events not numbered yet, and how long the oldest of
    /// them has waited (nil when there is none). Numbering keeps both near zero; a
    /// growing count means no instance is numbering (none running, or its runs fail).
    /// Cheap: the unnumbered events have an index of their own.
    public func backlog() async throws -> (count: Int, oldestAge: Duration?) {
        let row = try await mappingErrors {
            try await pool.query("""
                SELECT count(*)::int8, greatest(0, extract(epoch FROM clock_timestamp() - min(created_at)))::float8
                FROM events WHERE id IS NULL
                """)[0]
        }
        let count = try row[0, as: Int64.self]
        let age = try row[1, as: Double?.self]
        return (Int(count), age.map { Duration.milliseconds(Int64(($0 * 1000).rounded())) })
    }

    /// Numbers committed events that have no id yet, in the order they were written, and
    /// notifies `channel` with the last id given. Returns that id, or nil when there was
    /// nothing to number.
    ///
    /// Under the lock of the counter's row: numbering runs one at a time across every
    /// instance, and each run commits before the next starts, so ids become visible in
    /// increasing order and a reader never passes an id it could not see yet. Loops
    /// while full batches remain.
    @discardableResult
    public func sequence() async throws -> Int64? {
        var last: Int64?
        while true {
            let numbered: (count: Int, last: Int64?) = try await mappingErrors {
                try await pool.withConnection { connection in
                    try await connection.withTransaction { connection in
                        // The counter's row lock makes numbering one at a time, per
                        // schema. Waiting for it (rather than skipping) matters: the
                        // statement after it then sees every event committed until now,
                        // this caller's included.
                        let last = try await connection.query("SELECT last_id FROM event_counter FOR UPDATE")[0][0, as: Int64.self]
                        // The batch size stays bound, not written into the text. The
                        // connection keeps the plan it made first, maybe when the table
                        // was nearly empty and had no statistics yet. For a LIMIT it
                        // cannot see, that plan walks the index of unnumbered events
                        // and stops at the batch; for a written-in 1000 it was a bitmap
                        // scan through every dead entry numbering leaves in that index,
                        // then a hash join over the whole table (see EventTests).
                        let row = try await connection.query("""
                            WITH batch AS (
                                SELECT seq, row_number() OVER (ORDER BY seq) AS n FROM (
                                    SELECT seq FROM events WHERE id IS NULL ORDER BY seq LIMIT \(Self.sequenceBatch)) AS oldest
                            ),
                            numbered AS (
                                UPDATE events e SET id = \(last) + b.n FROM batch b
                                WHERE e.seq = b.seq RETURNING e.id
                            ),
                            counted AS (
                                UPDATE event_counter SET last_id = last_id + (SELECT count(*) FROM batch)
                                WHERE EXISTS (SELECT 1 FROM batch) RETURNING last_id
                            )
                            SELECT (SELECT count(*) FROM numbered)::int8, (SELECT last_id FROM counted)
                            """)[0]
                        let count = try row[0, as: Int64.self]
                        let newest = try row[1, as: Int64?.self]
                        if let newest { try await connection.query("SELECT pg_notify(\(Self.channel), \(String(newest)))") }
                        return (Int(count), newest)
                    }
                }
            }
            if let newest = numbered.last { last = newest }
            if numbered.count < Self.sequenceBatch { return last }
        }
    }

    /// Deletes events created before `cutoff` that webhooks are done with (fanned out, and
    /// no delivery of them still pending), `batch` rows per statement so no statement
    /// holds many locks or runs long. Returns how many went.
    @discardableResult
    public func prune(createdBefore cutoff: Date, batch: Int = 5000) async throws -> Int {
        var total = 0
        while true {
            let deleted = try await mappingErrors {
                try await pool.write("""
                    DELETE FROM events WHERE seq IN (
                        SELECT e.seq FROM events e
                        WHERE e.created_at < \(cutoff) AND e.id IS NOT NULL
                          AND e.id <= (SELECT last_event_id FROM webhook_cursor)
                          AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.state = 'pending' AND d.event_id = e.id)
                        ORDER BY e.created_at LIMIT \(batch))
                    RETURNING 1
                    """).count
            }
            total += deleted
            if deleted < batch { return total }
        }
    }

    /// Events with their subject as it was. An order event names its history row, and an
    /// order's lines and history rows never change once written: the order at that event
    /// is its lines, its history up to that row, that row's status, and that row's time
    /// as its `updated_at` (a transition sets both to the transaction's `now()`).
    static func select(where condition: PostgresQuery) -> PostgresQuery {
        var query: PostgresQuery = """
            SELECT e.id, e.type, e.subject_id, e.user_id, extract(epoch FROM e.created_at)::float8,
                   coalesce(e.payload, (
                       SELECT jsonb_build_object(
                           'id', o.id, 'userId', o.user_id, 'status', h.status, 'currency', o.currency,
                           'subtotalCents', o.subtotal_cents, 'totalCents', o.total_cents, 'idempotencyKey', o.idempotency_key,
                           'createdAt', extract(epoch FROM o.created_at), 'updatedAt', extract(epoch FROM h.changed_at),
                           'lines', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                'productId', l.product_id, 'sku', l.sku, 'name', l.name, 'unitPriceCents', l.unit_price_cents,
                                'quantity', l.quantity, 'lineTotalCents', l.line_total_cents) ORDER BY l.line_no), '[]')
                                FROM order_lines l WHERE l.order_id = o.id),
                           'history', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                'status', p.status, 'changedAt', extract(epoch FROM p.changed_at), 'changedBy', p.changed_by) ORDER BY p.id), '[]')
                                FROM order_status_history p WHERE p.order_id = o.id AND p.id <= h.id))
                       FROM order_status_history h JOIN orders o ON o.id = h.order_id
                       WHERE h.id = e.history_id))::text
            FROM events e WHERE
            """
        query.sql += " "
        query.append(condition)
        return query
    }

    /// nil for an order event whose order was deleted by hand since: nothing is left to
    /// show, and one such event must not fail a whole page.
    static func event(from row: PostgresRow) throws -> Event? {
        let type = try row[1, as: String.self]
        guard let payload = try row[5, as: String?.self] else { return nil }
        return Event(
            type: type, id: try row[0, as: Int64.self], subjectID: try row[2, as: Int64.self], userID: try row[3, as: Int64?.self],
            createdAt: Date(timeIntervalSince1970: try row[4, as: Double.self]),
            subject: try EventSnapshot.subject(type: type, payload: Array(payload.utf8))
        )
    }
}
