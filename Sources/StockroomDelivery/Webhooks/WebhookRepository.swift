public import Foundation
public import LibPQ
import Stockroom

/// Webhook endpoints and their deliveries (migration 0009): what the admin commands
/// call, and the statements the delivery worker runs (`fanOut`, `claim`, `record`).
///
/// Every statement is short and none spans an HTTP request: a delivery is leased in one
/// statement, sent with no transaction open, and its outcome written in another.
public struct WebhookRepository: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    /// Notified when deliveries were queued outside fan-out (a replay), to wake workers.
    public static let channel = "stockroom_webhooks"
    public static let maxURLBytes = 2048
    public static let maxDescriptionLength = 500
    /// Events fanned out per transaction.
    public static let fanOutBatch = 500

    // MARK: - Endpoints

    /// Checks what WEBHOOK.CREATE takes; throws `INVALID` naming the field.
    public static func validate(url: String, events: [String], description: String) throws {
        guard url.utf8.count <= maxURLBytes else { throw invalid("url", "must be at most \(maxURLBytes) bytes") }
        guard let parsed = URLComponents(string: url), let scheme = parsed.scheme, scheme == "http" || scheme == "https",
              let host = parsed.host, !host.isEmpty, !url.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F })
        else { throw invalid("url", "must be an http:// or https:// URL (lowercase scheme)") }
        guard (1...EventPattern.maxCount).contains(events.count) else { throw invalid("events", "must hold 1 to \(EventPattern.maxCount) patterns") }
        for pattern in events {
            guard (1...EventPattern.maxLength).contains(pattern.utf8.count), pattern.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw invalid("events", "each pattern must be 1 to \(EventPattern.maxLength) printable ASCII characters")
            }
        }
        guard description.count <= maxDescriptionLength else { throw invalid("description", "must be at most \(maxDescriptionLength) characters") }
        guard !description.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw invalid("description", "must not contain control characters")
        }
    }

    /// A new endpoint, and its secret: the only time the secret is given out.
    public func create(url: String, events: [String], description: String = "") async throws -> (endpoint: WebhookEndpoint, secret: String) {
        try Self.validate(url: url, events: events, description: description)
        let secret = WebhookSignature.newSecret()
        let rows = try await mapping {
            try await pool.write("""
                INSERT INTO webhook_endpoints (url, events, description, secret) VALUES (\(url), \(events), \(description), \(secret))
                RETURNING \(unsafeRaw: Self.endpointColumns)
                """)
        }
        return (try Self.endpoint(from: rows[0]), secret)
    }

    public func list() async throws -> [WebhookEndpoint] {
        try await mapping {
            try await pool.query("SELECT \(unsafeRaw: Self.endpointColumns) FROM webhook_endpoints ORDER BY id")
        }.map(Self.endpoint(from:))
    }

    public func endpoint(id: Int64) async throws -> WebhookEndpoint? {
        try await mapping {
            try await pool.query("SELECT \(unsafeRaw: Self.endpointColumns) FROM webhook_endpoints WHERE id = \(id)")
        }.first.map(Self.endpoint(from:))
    }

    /// Deletes the endpoint with its deliveries and their attempts.
    public func delete(id: Int64) async throws {
        let deleted = try await mapping { try await pool.write("DELETE FROM webhook_endpoints WHERE id = \(id) RETURNING 1").count }
        if deleted == 0 { throw StockroomError(.notFound, "webhook not found") }
    }

    /// An endpoint's deliveries after `after`, oldest first, each with its attempts.
    public func deliveries(endpoint: Int64, after: Int64 = 0, limit: Int = 50) async throws -> [WebhookDelivery] {
        guard try await self.endpoint(id: endpoint) != nil else { throw StockroomError(.notFound, "webhook not found") }
        let rows = try await mapping {
            try await pool.query("""
                SELECT d.id, d.endpoint_id, d.event_id, d.state, d.attempts,
                       CASE WHEN d.state = 'pending' THEN d.next_attempt_at END, d.last_status, d.last_error, d.created_at, d.delivered_at,
                       coalesce((SELECT json_agg(json_build_array(extract(epoch FROM a.started_at), a.status_code, a.latency_ms, a.error) ORDER BY a.id)
                                 FROM webhook_attempts a WHERE a.delivery_id = d.id), '[]')::text
                FROM webhook_deliveries d
                WHERE d.endpoint_id = \(endpoint) AND d.id > \(after)
                ORDER BY d.id LIMIT \(limit)
                """)
        }
        return try rows.map { row in
            WebhookDelivery(
                id: try row[0, as: Int64.self], endpointID: try row[1, as: Int64.self], eventID: try row[2, as: Int64.self],
                state: WebhookDelivery.State(rawValue: try row[3, as: String.self]) ?? .pending,
                attemptCount: Int(try row[4, as: Int32.self]), nextAttemptAt: try row[5, as: Date?.self],
                lastStatus: try row[6, as: Int32?.self].map(Int.init), lastError: try row[7, as: String?.self],
                createdAt: try row[8, as: Date.self], deliveredAt: try row[9, as: Date?.self],
                attempts: try Self.attempts(fromJSON: try row[10, as: String.self])
            )
        }
    }

    /// Queues event `eventID` again for every enabled endpoint whose patterns match its
    /// type, behind what each already has pending. Returns the endpoints' ids.
    @discardableResult
    public func replay(eventID: Int64) async throws -> [Int64] {
        try await mapping {
            try await pool.withTransaction { connection in
                let event = try await connection.query("SELECT type FROM events WHERE id = \(eventID)")
                guard let type = try event.first?[0, as: String.self] else { throw StockroomError(.notFound, "event not found") }
                let endpoints = try await connection.query("SELECT id, events FROM webhook_endpoints WHERE disabled_at IS NULL ORDER BY id")
                var ids: [Int64] = []
                for row in endpoints where EventPattern.matchesAny(try row[1, as: [String].self], type) { ids.append(try row[0, as: Int64.self]) }
                guard !ids.isEmpty else { return [] }
                try await connection.query("""
                    INSERT INTO webhook_deliveries (endpoint_id, event_id)
                    SELECT endpoint, \(eventID) FROM unnest(\(ids)::int8[]) WITH ORDINALITY AS u(endpoint, n) ORDER BY n
                    """)
                try await connection.query("SELECT pg_notify(\(Self.channel), \(String(eventID)))")
                return ids
            }
        }
    }

    // MARK: - Delivery

    /// Queues a delivery per enabled, matching endpoint for the events after the cursor,
    /// and moves the cursor past them, in one transaction under the cursor's row lock:
    /// one fan-out at a time across workers, each event fanned out once. Returns how many
    /// events it passed; call again while that is a full batch.
    @discardableResult
    public func fanOut() async throws -> Int {
        try await mapping {
            try await pool.withTransaction { connection in
                let cursor = try await connection.query("SELECT last_event_id FROM webhook_cursor FOR UPDATE")[0][0, as: Int64.self]
                let events = try await connection.query("SELECT id, type FROM events WHERE id > \(cursor) ORDER BY id LIMIT \(Self.fanOutBatch)")
                guard let last = try events.last?[0, as: Int64.self] else { return 0 }
                let endpoints = try await connection.query("SELECT id, events FROM webhook_endpoints WHERE disabled_at IS NULL ORDER BY id")
                    .map { (id: try $0[0, as: Int64.self], patterns: try $0[1, as: [String].self]) }
                var endpointIDs: [Int64] = [], eventIDs: [Int64] = []
                for row in events {
                    let id = try row[0, as: Int64.self], type = try row[1, as: String.self]
                    for endpoint in endpoints where EventPattern.matchesAny(endpoint.patterns, type) {
                        endpointIDs.append(endpoint.id)
                        eventIDs.append(id)
                    }
                }
                if !endpointIDs.isEmpty {
                    // In event order: delivery ids are the per-endpoint order.
                    try await connection.query("""
                        INSERT INTO webhook_deliveries (endpoint_id, event_id)
                        SELECT endpoint, event FROM unnest(\(endpointIDs)::int8[], \(eventIDs)::int8[]) WITH ORDINALITY AS u(endpoint, event, n) ORDER BY n
                        """)
                }
                try await connection.query("UPDATE webhook_cursor SET last_event_id = \(last)")
                return events.count
            }
        }
    }

    /// A delivery leased to one worker.
    public struct Claim: Sendable, Equatable {
        public var deliveryID: Int64
        public var endpointID: Int64
        public var eventID: Int64
        /// Attempts made before this one.
        public var attempts: Int
        public var url: String
        public var secret: String
        public var leaseToken: String
    }

    /// Leases up to `limit` due deliveries, each its endpoint's oldest pending one, to
    /// `leaseToken` for `lease`. One statement: locked rows are skipped, not waited for,
    /// and the lease, not a transaction, keeps other workers off while the request runs.
    public func claim(limit: Int, lease: Duration, leaseToken: String) async throws -> [Claim] {
        let seconds = Self.seconds(lease)
        let rows = try await mapping {
            try await pool.write("""
                UPDATE webhook_deliveries d
                SET lease_token = \(leaseToken), lease_expires_at = now() + \(seconds) * interval '1 second', updated_at = now()
                FROM (
                    SELECT due.id FROM webhook_deliveries due
                    JOIN webhook_endpoints ep ON ep.id = due.endpoint_id AND ep.disabled_at IS NULL
                    WHERE due.state = 'pending' AND due.next_attempt_at <= now()
                      AND (due.lease_expires_at IS NULL OR due.lease_expires_at <= now())
                      AND NOT EXISTS (
                          SELECT 1 FROM webhook_deliveries older
                          WHERE older.endpoint_id = due.endpoint_id AND older.state = 'pending' AND older.id < due.id)
                    ORDER BY due.id
                    LIMIT \(limit)
                    FOR UPDATE OF due SKIP LOCKED
                ) AS chosen, webhook_endpoints ep
                WHERE d.id = chosen.id AND ep.id = d.endpoint_id
                RETURNING d.id, d.endpoint_id, d.event_id, d.attempts, ep.url, ep.secret
                """)
        }
        return try rows.map { row in
            Claim(
                deliveryID: try row[0, as: Int64.self], endpointID: try row[1, as: Int64.self], eventID: try row[2, as: Int64.self],
                attempts: Int(try row[3, as: Int32.self]), url: try row[4, as: String.self], secret: try row[5, as: String.self],
                leaseToken: leaseToken)
        }
    }

    /// Writes an attempt and what follows from it, and releases the lease. When the
    /// lease was lost (it expired and another worker took the delivery over) only the
    /// attempt is written. Safe to call again with the same attempt — the worker does when
    /// a commit's answer was lost — since an attempt is written once per `startedAt`.
    public func record(_ claim: Claim, attempt: WebhookAttempt, decision: DeliveryDecision, disableAfterDeadDeliveries: Int) async throws {
        let state: String, delay: Double?
        switch decision {
        case .delivered: (state, delay) = ("delivered", nil)
        case .retry(let after): (state, delay) = ("pending", Self.seconds(after))
        case .dead, .gone, .eventMissing: (state, delay) = ("dead", nil)
        }
        let error = attempt.error.map { String($0.prefix(500)) }
        try await mapping {
            try await pool.withTransaction { connection in
                try await connection.query("""
                    INSERT INTO webhook_attempts (delivery_id, started_at, status_code, latency_ms, error)
                    SELECT \(claim.deliveryID), \(attempt.startedAt), \(attempt.statusCode.map(Int32.init)), \(Int32(clamping: attempt.latencyMs)), \(error)
                    WHERE NOT EXISTS (SELECT 1 FROM webhook_attempts WHERE delivery_id = \(claim.deliveryID) AND started_at = \(attempt.startedAt))
                    """)
                let updated = try await connection.query("""
                    UPDATE webhook_deliveries
                    SET state = \(state), attempts = attempts + 1,
                        next_attempt_at = CASE WHEN \(delay)::float8 IS NULL THEN next_attempt_at ELSE now() + \(delay)::float8 * interval '1 second' END,
                        lease_token = NULL, lease_expires_at = NULL,
                        last_status = \(attempt.statusCode.map(Int32.init)), last_error = \(error), updated_at = now(),
                        delivered_at = CASE WHEN \(state) = 'delivered' THEN now() END
                    WHERE id = \(claim.deliveryID) AND lease_token = \(claim.leaseToken)
                    RETURNING 1
                    """).count
                guard updated == 1 else { return }
                switch decision {
                case .delivered:
                    try await connection.query("UPDATE webhook_endpoints SET consecutive_dead = 0 WHERE id = \(claim.endpointID) AND consecutive_dead <> 0")
                case .gone:
                    try await connection.query("""
                        UPDATE webhook_endpoints SET disabled_at = coalesce(disabled_at, now()),
                            disabled_reason = coalesce(disabled_reason, 'the receiver answered 410 Gone')
                        WHERE id = \(claim.endpointID)
                        """)
                case .dead:
                    let reason = "\(disableAfterDeadDeliveries) deliveries in a row failed every attempt"
                    try await connection.query("""
                        UPDATE webhook_endpoints SET consecutive_dead = consecutive_dead + 1,
                            disabled_at = CASE WHEN disabled_at IS NULL AND consecutive_dead + 1 >= \(disableAfterDeadDeliveries) THEN now() ELSE disabled_at END,
                            disabled_reason = CASE WHEN disabled_at IS NULL AND consecutive_dead + 1 >= \(disableAfterDeadDeliveries) THEN \(reason) ELSE disabled_reason END
                        WHERE id = \(claim.endpointID)
                        """)
                case .retry, .eventMissing:
                    break
                }
            }
        }
    }

    /// Seconds until the next claimable delivery falls due (or its lease expires), 0
    /// when one is due now; nil when none is pending. Only each endpoint's oldest pending
    /// delivery counts: the ones queued behind it are not due, whatever their time says,
    /// and counting them would wake the worker at once, again and again.
    public func secondsUntilNextDue() async throws -> Double? {
        try await mapping {
            try await pool.query("""
                SELECT extract(epoch FROM min(greatest(d.next_attempt_at, coalesce(d.lease_expires_at, d.next_attempt_at))) - clock_timestamp())::float8
                FROM webhook_deliveries d JOIN webhook_endpoints ep ON ep.id = d.endpoint_id AND ep.disabled_at IS NULL
                WHERE d.state = 'pending'
                  AND NOT EXISTS (
                      SELECT 1 FROM webhook_deliveries older
                      WHERE older.endpoint_id = d.endpoint_id AND older.state = 'pending' AND older.id < d.id)
                """)[0][0, as: Double?.self]
        }.map { max(0, $0) }
    }

    /// Deletes delivered and dead deliveries (with their attempts) last changed before
    /// `cutoff`, `batch` per statement. Returns how many went.
    @discardableResult
    public func pruneFinished(before cutoff: Date, batch: Int = 5000) async throws -> Int {
        var total = 0
        while true {
            let deleted = try await mapping {
                try await pool.write("""
                    DELETE FROM webhook_deliveries WHERE id IN (
                        SELECT id FROM webhook_deliveries WHERE state <> 'pending' AND updated_at < \(cutoff) ORDER BY updated_at LIMIT \(batch))
                    RETURNING 1
                    """).count
            }
            total += deleted
            if deleted < batch { return total }
        }
    }

    // MARK: - Rows

    static let endpointColumns = "id, url, events, description, created_at, disabled_at, disabled_reason, consecutive_dead"

    static func endpoint(from row: PostgresRow) throws -> WebhookEndpoint {
        WebhookEndpoint(
            id: try row[0, as: Int64.self], url: try row[1, as: String.self], events: try row[2, as: [String].self],
            description: try row[3, as: String.self], createdAt: try row[4, as: Date.self], disabledAt: try row[5, as: Date?.self],
            disabledReason: try row[6, as: String?.self], consecutiveDead: Int(try row[7, as: Int32.self]))
    }

    static func attempts(fromJSON text: String) throws -> [WebhookAttempt] {
        guard let list = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[Any]] else { return [] }
        return list.map { item in
            WebhookAttempt(
                startedAt: Date(timeIntervalSince1970: (item[0] as? NSNumber)?.doubleValue ?? 0),
                statusCode: (item[1] as? NSNumber)?.intValue, latencyMs: (item[2] as? NSNumber)?.intValue ?? 0,
                error: item[3] as? String)
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func invalid(_ field: String, _ message: String) -> StockroomError {
        StockroomError(.invalidInput, "\(field): \(message)", field: field)
    }

    private func mapping<T>(isolation actor: isolated (any Actor)? = #isolation, _ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as StockroomError { throw error } catch { throw StockroomError.mapping(error) }
    }
}
