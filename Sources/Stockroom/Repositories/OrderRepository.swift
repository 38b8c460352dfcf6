import Foundation
public import LibPQ

/// Orders: placing them atomically against stock, and moving them through their states.
///
/// pending → paid → shipped → delivered; pending or paid → cancelled (restocks every
/// line). Every transition is one statement, so it is atomic on its own and a race
/// between two transitions has exactly one winner.
public struct OrderRepository: Sendable {
    let pool: PostgresPool
    /// Order transactions running at once (see `AdmissionGate`); nil for no limit
    /// beyond the pool's.
    public let admission: AdmissionGate?

    public init(pool: PostgresPool, admission: AdmissionGate? = nil) {
        self.pool = pool
        self.admission = admission
    }

    /// Runs an order transaction through `admission`.
    private func admitted<T>(_ body: () async throws -> T) async throws -> T {
        guard let admission else { return try await body() }
        return try await admission.run(body)
    }

    public static let maxLines = 100
    public static let maxQuantity = 1_000_000

    /// Places an order for `userID` (the principal themself; admins may place for anyone).
    ///
    /// Either every line is in stock and active and the whole order is written with the
    /// stock decremented, or nothing is written. Prices are snapshotted. The same product
    /// twice is merged into one line. With an `idempotencyKey` the user already used, the
    /// original order is returned and stock is left alone; the same key with a different
    /// request is a conflict.
    public func place(_ request: OrderRequest, for userID: Int64? = nil, as principal: Principal) async throws -> Order {
        let owner = userID ?? principal.userID
        guard owner == principal.userID || principal.isAdmin else {
            throw StockroomError(.permissionDenied, "only admins can place orders for other users")
        }
        let lines = try Self.normalize(request.lines)
        if let key = request.idempotencyKey {
            guard (1...200).contains(key.count) else { throw StockroomError.invalid("idempotency_key", "must be 1 to 200 characters") }
            try Validate.noControlCharacters(key, field: "idempotency_key")
        }
        let requestHash = Sodium.sha256(Array(lines.map { "\($0.productID):\($0.quantity)" }.joined(separator: ",").utf8))
        do {
            // One statement, one round trip. Concurrent orders over the same products
            // lock them in id order, so they queue instead of deadlocking; a deadlock or
            // serialization failure from elsewhere is retried.
            let statement = Self.placeStatement(owner: owner, lines: lines, key: request.idempotencyKey, requestHash: requestHash, actor: principal.userID)
            let rows = try await admitted {
                try await withTransactionRetry(maxAttempts: 3) {
                    try await pool.withConnection { connection in
                        // Left to choose, PostgreSQL re-plans this statement on every call
                        // (its custom plans look cheaper than the generic one), and planning
                        // nine CTEs costs more than running them: about a third of the
                        // throughput. Its plan does not depend on the values, so force the
                        // generic plan for this statement alone: a setting local to the
                        // transaction, in the same round trip, that ends with it.
                        try await connection.pipelineTransaction([
                            "SELECT set_config('plan_cache_mode', 'force_generic_plan', true)", statement,
                        ])[1]
                    }
                }
            }
            return try await outcome(of: rows, owner: owner, actor: principal.userID, key: request.idempotencyKey, requestHash: requestHash)
        } catch let error as PostgresError where error.sqlState == .uniqueViolation && error.constraint == "orders_idempotency_key_unique" {
            // A concurrent request with the same key won the race.
            return try await replay(owner: owner, key: request.idempotencyKey!, requestHash: requestHash)
        } catch let unknown as PostgresError where unknown.code == .commitOutcomeUnknown && request.idempotencyKey != nil {
            // The database cannot say whether the commit happened (it restarted, was out
            // of reach too long, or the connection was cut before the transaction's id
            // came back): the key can. Found, the order was placed. Not found once the
            // transaction is surely over, it was not: a retry is safe.
            // Otherwise the client hears that it is in doubt and retries with the key.
            let placed: Order?
            do {
                placed = try await replayIfPlaced(owner: owner, key: request.idempotencyKey!, requestHash: requestHash)
            } catch {
                throw StockroomError.mapping(unknown)  // still out of reach: in doubt
            }
            if let placed { return placed }
            guard unknown.transactionIsOver else { throw StockroomError.mapping(unknown) }
            throw StockroomError(.unavailable, "the order was not placed: its transaction ended without committing; try again")
        } catch let error as PostgresError where error.sqlState == .foreignKeyViolation && error.constraint == "orders_user_id_fkey" {
            throw StockroomError.notFound("user \(owner)")
        } catch {
            throw StockroomError.mapping(error)
        }
    }

    /// Validates lines and merges repeated products, in a stable order.
    static func normalize(_ lines: [OrderRequest.Line]) throws -> [OrderRequest.Line] {
        guard (1...maxLines).contains(lines.count) else { throw StockroomError.invalid("lines", "must hold 1 to \(maxLines) lines") }
        var merged: [Int64: Int] = [:]
        var order: [Int64] = []
        for (index, line) in lines.enumerated() {
            guard line.productID > 0 else { throw StockroomError.invalid("lines[\(index)].product_id", "must be a positive integer") }
            guard (1...maxQuantity).contains(line.quantity) else {
                throw StockroomError.invalid("lines[\(index)].quantity", "must be between 1 and \(maxQuantity)")
            }
            if merged[line.productID] == nil { order.append(line.productID) }
            merged[line.productID, default: 0] += line.quantity
            guard merged[line.productID]! <= maxQuantity else {
                throw StockroomError.invalid("lines[\(index)].quantity", "product \(line.productID) totals more than \(maxQuantity)")
            }
        }
        return order.sorted().map { OrderRequest.Line(productID: $0, quantity: merged[$0]!) }
    }

    private static func placeStatement(owner: Int64, lines: [OrderRequest.Line], key: String?, requestHash: [UInt8], actor: Int64) -> PostgresQuery {
        let productIDs = lines.map(\.productID)
        let quantities = lines.map { Int32($0.quantity) }
        return """
            WITH request AS (
                SELECT r.product_id, r.quantity, r.line_no
                FROM unnest(\(productIDs)::int8[], \(quantities)::int4[]) WITH ORDINALITY AS r (product_id, quantity, line_no)
            ),
            existing AS (
                SELECT o.id FROM orders o WHERE o.user_id = \(owner) AND o.idempotency_key = \(key)
            ),
            locked AS MATERIALIZED (
                SELECT p.id, p.sku, p.name, p.price_cents, p.currency, p.stock, p.active
                FROM products p
                WHERE p.id = ANY(\(productIDs)::int8[]) AND NOT EXISTS (SELECT 1 FROM existing)
                ORDER BY p.id
                FOR UPDATE
            ),
            lines AS (
                SELECT r.line_no, r.product_id, r.quantity, l.id IS NOT NULL AS found, l.sku, l.name,
                       l.price_cents, l.currency, l.stock, l.active, l.price_cents::numeric * r.quantity AS line_total
                FROM request r LEFT JOIN locked l ON l.id = r.product_id
            ),
            verdict AS (
                SELECT NOT EXISTS (SELECT 1 FROM existing)
                       AND bool_and(found AND active AND stock >= quantity)
                       AND count(DISTINCT currency) = 1
                       AND sum(line_total) <= 9223372036854775807 AS ok,
                       min(currency) AS currency, sum(line_total) AS subtotal
                FROM lines
            ),
            placed AS (
                INSERT INTO orders (user_id, currency, subtotal_cents, total_cents, idempotency_key, request_hash)
                SELECT \(owner), v.currency, v.subtotal::int8, v.subtotal::int8, \(key), \(requestHash)
                FROM verdict v WHERE v.ok
                RETURNING id, status, currency, subtotal_cents, total_cents, created_at, updated_at
            ),
            decremented AS (
                UPDATE products p SET stock = p.stock - l.quantity, updated_at = now()
                FROM lines l, placed
                WHERE p.id = l.product_id
            ),
            placed_lines AS (
                INSERT INTO order_lines (order_id, line_no, product_id, sku, name, unit_price_cents, quantity, line_total_cents)
                SELECT placed.id, l.line_no, l.product_id, l.sku, l.name, l.price_cents, l.quantity, l.line_total::int8
                FROM lines l, placed
            ),
            history AS (
                INSERT INTO order_status_history (order_id, status, changed_by)
                SELECT id, 'pending', \(actor) FROM placed
                RETURNING changed_at
            )
            -- Per line: why an order was refused. Once placed, also the line itself and the
            -- order, so that placing costs one round trip — as plain columns, which cost
            -- less to build and to read than the jsonb select() returns.
            SELECT l.line_no, l.product_id, l.quantity, l.found, l.active, l.stock, l.currency,
                   l.line_total > 9223372036854775807 AS overflow,
                   (SELECT id FROM existing) AS existing_id,
                   p.id AS order_id, p.status, p.currency AS order_currency, p.subtotal_cents, p.total_cents,
                   p.created_at, p.updated_at, l.sku, l.name, l.price_cents AS unit_price_cents,
                   CASE WHEN p.id IS NOT NULL THEN l.line_total::int8 END AS line_total_cents,
                   -- As select() reads it: the same instant to the last bit.
                   (SELECT extract(epoch FROM h.changed_at)::float8 FROM history h) AS changed_at
            FROM lines l LEFT JOIN placed p ON true
            ORDER BY l.line_no
            """
    }

    /// Turns the placement statement's rows into the order, or the reason it was refused.
    private func outcome(of rows: PostgresRows, owner: Int64, actor: Int64, key: String?, requestHash: [UInt8]) async throws -> Order {
        guard let first = rows.first else { throw StockroomError(.invalidInput, "an order needs lines", field: "lines") }
        if let orderID = try first["order_id", as: Int64?.self] {
            return Order(
                id: orderID, userID: owner, status: OrderStatus(rawValue: try first["status"])!,
                currency: try first["order_currency"], subtotalCents: try first["subtotal_cents"], totalCents: try first["total_cents"],
                idempotencyKey: key, createdAt: try first["created_at"], updatedAt: try first["updated_at"],
                lines: try rows.map { row in
                    OrderLine(
                        productID: try row["product_id"], sku: try row["sku"], name: try row["name"],
                        unitPriceCents: try row["unit_price_cents"], quantity: try row["quantity"],
                        lineTotalCents: try row["line_total_cents"]
                    )
                },
                history: [OrderStatusChange(status: .pending, changedAt: Date(timeIntervalSince1970: try first["changed_at"]), changedBy: actor)]
            )
        }
        if try first["existing_id", as: Int64?.self] != nil, let key {
            return try await replay(owner: owner, key: key, requestHash: requestHash)
        }
        // Refused. With a key, a request with the same key may have placed the order
        // meanwhile: its commit came after this statement's snapshot (taken before it
        // queued for the products' locks), so the stock it took looks like a shortage.
        // A client retrying its own request must get that order, not the refusal.
        if let key, let placed = try await replayIfPlaced(owner: owner, key: key, requestHash: requestHash) {
            return placed
        }
        var currencies = Set<String>()
        for row in rows {
            let productID = try row["product_id", as: Int64.self]
            guard try row["found", as: Bool.self] else { throw StockroomError.notFound("product \(productID)") }
            guard try row["active", as: Bool?.self] == true else {
                throw StockroomError.invalid("lines", "product \(productID) is no longer sold")
            }
            let stock = try row["stock", as: Int.self]
            let quantity = try row["quantity", as: Int.self]
            if stock < quantity { throw StockroomError.outOfStock(product: productID, available: stock, requested: quantity) }
            currencies.insert(try row["currency", as: String.self])
        }
        if currencies.count > 1 {
            throw StockroomError.invalid("lines", "products in one order must share a currency (got \(currencies.sorted().joined(separator: ", ")))")
        }
        throw StockroomError.invalid("lines", "the order total exceeds the largest amount that can be stored")
    }

    private func replay(owner: Int64, key: String, requestHash: [UInt8]) async throws -> Order {
        guard let order = try await replayIfPlaced(owner: owner, key: key, requestHash: requestHash) else {
            throw StockroomError(.conflict, "idempotency key is being used concurrently, try again")
        }
        return order
    }

    /// The order already placed with `key`, if any; a conflict if it was another request.
    private func replayIfPlaced(owner: Int64, key: String, requestHash: [UInt8]) async throws -> Order? {
        let existing = try await mappingErrors {
            try await pool.query("SELECT id, request_hash FROM orders WHERE user_id = \(owner) AND idempotency_key = \(key)")
        }
        guard let row = existing.first else { return nil }
        guard try row["request_hash", as: [UInt8].self] == requestHash else {
            throw StockroomError(.conflict, "idempotency_key was already used for a different order", field: "idempotency_key")
        }
        return try await order(id: try row["id", as: Int64.self], visibleTo: nil)
    }

    // MARK: - Reading

    /// An order with its lines and history. Customers see their own orders only: for
    /// anyone else's the answer is "not found", which does not reveal that it exists.
    public func order(id: Int64, as principal: Principal) async throws -> Order {
        try await order(id: try Validate.id(id), visibleTo: principal)
    }

    private func order(id: Int64, visibleTo principal: Principal?) async throws -> Order {
        let owner: Int64? = principal.flatMap { $0.isAdmin ? nil : $0.userID }
        let orders = try await mappingErrors {
            try await pool.query(Self.select(where: "o.id = \(id) AND (\(owner)::int8 IS NULL OR o.user_id = \(owner))"))
        }
        guard let row = orders.first else { throw StockroomError.notFound("order \(id)") }
        return try Self.order(from: row)
    }

    /// Orders by id, `limit` (1–500) at a time after `after`, optionally by status.
    /// Customers list their own; admins anyone's, or one user's with `userID`.
    public func list(userID: Int64? = nil, status: OrderStatus? = nil, after: Int64 = 0, limit: Int = 50, as principal: Principal) async throws -> [Order] {
        let limit = try Validate.limit(limit)
        var owner = userID
        if !principal.isAdmin {
            guard userID == nil || userID == principal.userID else {
                throw StockroomError(.permissionDenied, "customers can list only their own orders")
            }
            owner = principal.userID
        }
        let rows = try await mappingErrors {
            try await pool.query(Self.select(where: """
                o.id > \(after) AND (\(owner)::int8 IS NULL OR o.user_id = \(owner))
                AND (\(status?.rawValue)::text IS NULL OR o.status = \(status?.rawValue))
                ORDER BY o.id LIMIT \(limit)
                """))
        }
        return try rows.map(Self.order(from:))
    }

    /// One query for an order, its lines and its history; lines and history come as
    /// JSON arrays so that a list of orders is still one round trip.
    private static func select(where condition: PostgresQuery) -> PostgresQuery {
        var query: PostgresQuery = """
            SELECT o.id, o.user_id, o.status, o.currency, o.subtotal_cents, o.total_cents, o.idempotency_key,
                   o.created_at, o.updated_at,
                   (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'productId', l.product_id, 'sku', l.sku, 'name', l.name, 'unitPriceCents', l.unit_price_cents,
                        'quantity', l.quantity, 'lineTotalCents', l.line_total_cents) ORDER BY l.line_no), '[]')
                    FROM order_lines l WHERE l.order_id = o.id) AS lines,
                   (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'status', h.status, 'changedAt', extract(epoch FROM h.changed_at), 'changedBy', h.changed_by) ORDER BY h.id), '[]')
                    FROM order_status_history h WHERE h.order_id = o.id) AS history
            FROM orders o WHERE
            """
        query.sql += " "
        query.append(condition)
        return query
    }

    private struct HistoryEntry: Codable, Sendable {
        var status: OrderStatus
        var changedAt: Double
        var changedBy: Int64?
    }

    private static func order(from row: PostgresRow) throws -> Order {
        Order(
            id: try row["id"], userID: try row["user_id"], status: OrderStatus(rawValue: try row["status"])!,
            currency: try row["currency"], subtotalCents: try row["subtotal_cents"], totalCents: try row["total_cents"],
            idempotencyKey: try row["idempotency_key"], createdAt: try row["created_at"], updatedAt: try row["updated_at"],
            lines: try row["lines", as: PostgresJSON<[OrderLine]>.self].value,
            history: history(try row["history", as: PostgresJSON<[HistoryEntry]>.self].value)
        )
    }

    private static func history(_ entries: [HistoryEntry]) -> [OrderStatusChange] {
        entries.map { OrderStatusChange(status: $0.status, changedAt: Date(timeIntervalSince1970: $0.changedAt), changedBy: $0.changedBy) }
    }

    // MARK: - Transitions

    /// A manual payment (cash, bank transfer), recorded by an admin. Customers pay
    /// through the processor: `PaymentRepository` and ORDER.CHECKOUT.
    public func pay(id: Int64, as principal: Principal) async throws -> Order {
        try requireAdmin(principal, "record manual payments; customers pay with ORDER.CHECKOUT")
        return try await transition(id, to: .paid, from: [.pending], action: "pay", as: principal)
    }

    /// Cancels a pending or paid order and puts every line back in stock, atomically.
    public func cancel(id: Int64, as principal: Principal) async throws -> Order {
        try await transition(id, to: .cancelled, from: [.pending, .paid], action: "cancel", as: principal)
    }

    public func ship(id: Int64, as principal: Principal) async throws -> Order {
        try requireAdmin(principal, "ship orders")
        return try await transition(id, to: .shipped, from: [.paid], action: "ship", as: principal)
    }

    public func deliver(id: Int64, as principal: Principal) async throws -> Order {
        try requireAdmin(principal, "mark orders delivered")
        return try await transition(id, to: .delivered, from: [.shipped], action: "deliver", as: principal)
    }

    private func transition(_ id: Int64, to target: OrderStatus, from allowed: [OrderStatus], action: String, as principal: Principal) async throws -> Order {
        let id = try Validate.id(id)
        let owner: Int64? = principal.isAdmin ? nil : principal.userID
        let restock = target == .cancelled
        let changed = try await mappingErrors {
            try await admitted {
                try await withTransactionRetry(maxAttempts: 3) {
                    try await pool.write("""
                        WITH target AS (
                            UPDATE orders SET status = \(target.rawValue), updated_at = now()
                            WHERE id = \(id) AND status = ANY(\(allowed.map(\.rawValue))::text[])
                              AND (\(owner)::int8 IS NULL OR user_id = \(owner))
                            RETURNING id
                        ),
                        locked AS MATERIALIZED (
                            SELECT p.id, l.quantity FROM products p
                            JOIN order_lines l ON l.product_id = p.id JOIN target t ON l.order_id = t.id
                            WHERE \(restock)
                            ORDER BY p.id
                            FOR UPDATE OF p
                        ),
                        restocked AS (
                            UPDATE products p SET stock = p.stock + k.quantity, updated_at = now()
                            FROM locked k WHERE p.id = k.id
                        ),
                        history AS (
                            INSERT INTO order_status_history (order_id, status, changed_by)
                            SELECT id, \(target.rawValue), \(principal.userID) FROM target
                        )
                        SELECT id FROM target
                        """)
                }
            }
        }
        if changed.isEmpty {
            // Nothing changed: say why — no such order (for this user), or its state.
            let current = try await mappingErrors {
                try await pool.query("SELECT status FROM orders WHERE id = \(id) AND (\(owner)::int8 IS NULL OR user_id = \(owner))")
            }
            guard let row = current.first else { throw StockroomError.notFound("order \(id)") }
            throw StockroomError.invalidState(OrderStatus(rawValue: try row["status"])!, action: action)
        }
        return try await order(id: id, visibleTo: nil)
    }
}
