public import Foundation
public import LibPQ

/// Payments through a processor (migration 0010), the database's half of them: the
/// processor is called by StockroomDelivery, never inside a transaction here.
///
/// A checkout is `begin` (the payment row and its idempotency key, committed before the
/// processor is asked), the processor's call, then `attach` (its intent). The
/// processor's webhook calls `applySucceeded`, which pays the order exactly once.
/// Cancelling a paid order queues its refund (the trigger of migration 0010), which
/// `markRefunded` completes.
public struct PaymentRepository: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) { self.pool = pool }

    static let columns = "order_id, idempotency_key::text, intent_id, client_secret, amount_cents, currency, status, refund_id"
    /// `columns` of the table aliased `p`.
    static let aliasedColumns = columns.split(separator: ", ").map { "p." + $0 }.joined(separator: ", ")

    /// The order's payment, created if it has none. Only the order's owner checks out,
    /// only a pending order, and only one with something to pay.
    public func begin(orderID: Int64, as principal: Principal) async throws -> Payment {
        let orderID = try Validate.id(orderID)
        return try await mappingErrors {
            try await pool.withTransaction { connection in
                let rows = try await connection.query("""
                    SELECT user_id, status, total_cents, currency FROM orders WHERE id = \(orderID) FOR SHARE
                    """)
                guard let order = rows.first, try order[0, as: Int64.self] == principal.userID || principal.isAdmin else {
                    throw StockroomError.notFound("order \(orderID)")
                }
                guard try order[0, as: Int64.self] == principal.userID else {
                    throw StockroomError(.permissionDenied, "only the order's owner checks out; admins record manual payments with ORDER.PAY")
                }
                let status = OrderStatus(rawValue: try order[1, as: String.self])!
                guard status == .pending else { throw StockroomError.invalidState(status, action: "check out") }
                guard try order[2, as: Int64.self] > 0 else { throw StockroomError.invalid("order", "has nothing to pay") }
                let payment = try await connection.query("""
                    WITH created AS (
                        INSERT INTO payments (order_id, amount_cents, currency) VALUES (\(orderID), \(try order[2, as: Int64.self]), \(try order[3, as: String.self]))
                        ON CONFLICT (order_id) DO NOTHING
                        RETURNING \(unsafeRaw: Self.columns)
                    )
                    SELECT * FROM created UNION ALL SELECT \(unsafeRaw: Self.columns) FROM payments WHERE order_id = \(orderID)
                    """)
                return try Self.payment(from: payment[0])
            }
        }
    }

    /// Records the processor's intent for the payment. The same intent again is a no-op
    /// (two checkouts raced with one key); another one is a conflict, and a bug.
    public func attach(orderID: Int64, intentID: String, clientSecret: String) async throws -> Payment {
        try await mappingErrors {
            let rows = try await pool.write("""
                UPDATE payments SET intent_id = \(intentID), client_secret = \(clientSecret)
                WHERE order_id = \(orderID) AND (intent_id IS NULL OR intent_id = \(intentID))
                RETURNING \(unsafeRaw: Self.columns)
                """)
            guard let row = rows.first else { throw StockroomError(.conflict, "order \(orderID) already has another payment intent") }
            return try Self.payment(from: row)
        }
    }

    /// The payment of an order `principal` may see (their own; any for admins): nil when
    /// it has none through the processor (unpaid, or paid by hand); `.notFound` when the
    /// order is not theirs to see. One statement.
    public func payment(orderID: Int64, as principal: Principal) async throws -> Payment? {
        let orderID = try Validate.id(orderID)
        let owner: Int64? = principal.isAdmin ? nil : principal.userID
        let rows = try await mappingErrors {
            try await pool.query("""
                SELECT p.order_id IS NOT NULL, \(unsafeRaw: Self.aliasedColumns)
                FROM orders o LEFT JOIN payments p ON p.order_id = o.id
                WHERE o.id = \(orderID) AND (\(owner)::int8 IS NULL OR o.user_id = \(owner))
                """)
        }
        guard let row = rows.first else { throw StockroomError.notFound("order \(orderID)") }
        guard try row[0, as: Bool.self] else { return nil }
        return try Self.payment(from: row, offset: 1)
    }

    public func payment(orderID: Int64) async throws -> Payment? {
        try await mappingErrors {
            try await pool.query("SELECT \(unsafeRaw: Self.columns) FROM payments WHERE order_id = \(orderID)").first.map { try Self.payment(from: $0) }
        }
    }

    /// The processor says intent `intentID` succeeded (its event `eventID`), for
    /// `amountCents` in `currency`. In one transaction: the event is remembered (a second
    /// delivery of it changes nothing), the payment succeeds once, and its order becomes
    /// paid — writing `order.paid` and the confirmation e-mail's job, as any payment
    /// does — or, when the order is no longer pending, the money is refunded.
    public func applySucceeded(eventID: String, eventType: String, intentID: String, amountCents: Int64, currency: String) async throws -> PaymentSuccessOutcome {
        try await mappingErrors {
            try await pool.withTransaction { connection in
                let fresh = try await connection.query("""
                    INSERT INTO payment_events (id, type) VALUES (\(eventID), \(eventType)) ON CONFLICT (id) DO NOTHING RETURNING 1
                    """)
                guard !fresh.isEmpty else { return .duplicateEvent }
                let rows = try await connection.query("""
                    SELECT order_id, amount_cents, currency, status FROM payments WHERE intent_id = \(intentID) FOR UPDATE
                    """)
                guard let payment = rows.first else { return .unknownIntent }
                let orderID = try payment[0, as: Int64.self]
                guard try payment[1, as: Int64.self] == amountCents, try payment[2, as: String.self] == currency.uppercased() else {
                    return .mismatch(orderID: orderID)
                }
                guard try payment[3, as: String.self] == Payment.Status.created.rawValue else { return .alreadySucceeded(orderID: orderID) }
                let paid = try await connection.query("""
                    WITH target AS (
                        UPDATE orders SET status = 'paid', updated_at = now() WHERE id = \(orderID) AND status = 'pending' RETURNING id
                    ),
                    history AS (
                        INSERT INTO order_status_history (order_id, status, changed_by) SELECT id, 'paid', NULL FROM target
                    )
                    SELECT id FROM target
                    """)
                if paid.isEmpty {
                    // Cancelled (or paid by hand) meanwhile: the customer must not pay twice.
                    try await connection.query("""
                        UPDATE payments SET status = 'refund_pending', succeeded_at = now() WHERE order_id = \(orderID)
                        """)
                    try await connection.query("""
                        INSERT INTO jobs (kind, order_id) VALUES ('payment.refund', \(orderID)) ON CONFLICT DO NOTHING
                        """)
                    try await connection.query("SELECT pg_notify('stockroom_jobs', '')")
                    return .refundQueued(orderID: orderID)
                }
                try await connection.query("UPDATE payments SET status = 'succeeded', succeeded_at = now() WHERE order_id = \(orderID)")
                return .orderPaid(orderID: orderID)
            }
        }
    }

    /// The refund went through (or the processor says it already had).
    public func markRefunded(orderID: Int64, refundID: String?) async throws {
        _ = try await mappingErrors {
            try await pool.write("""
                UPDATE payments SET status = 'refunded', refund_id = coalesce(\(refundID), refund_id), refunded_at = now()
                WHERE order_id = \(orderID) AND status = 'refund_pending'
                """)
        }
    }

    /// Forgets processor events received before `cutoff`.
    @discardableResult
    public func pruneEvents(before cutoff: Date) async throws -> Int {
        try await mappingErrors {
            try await pool.write("DELETE FROM payment_events WHERE received_at < \(cutoff) RETURNING 1").count
        }
    }

    /// `columns`, read from column `offset` on.
    static func payment(from row: PostgresRow, offset: Int = 0) throws -> Payment {
        Payment(
            orderID: try row[offset, as: Int64.self], idempotencyKey: try row[offset + 1, as: String.self],
            intentID: try row[offset + 2, as: String?.self], clientSecret: try row[offset + 3, as: String?.self],
            amountCents: try row[offset + 4, as: Int64.self], currency: try row[offset + 5, as: String.self],
            status: Payment.Status(rawValue: try row[offset + 6, as: String.self]) ?? .created, refundID: try row[offset + 7, as: String?.self])
    }
}
