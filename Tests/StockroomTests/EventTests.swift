import Foundation
import LibPQ
import Stockroom
import Testing

@Suite("The outbox: an event per change, in the change's transaction, numbered as they become visible")
struct EventTests {
    typealias Line = OrderRequest.Line

    static func events(_ stockroom: Stockroom, after: Int64 = 0, as principal: Principal? = nil) async throws -> [Event] {
        try await stockroom.events.sequence()
        return try await stockroom.events.read(after: after, limit: 500, as: principal)
    }

    @Test func everyOrderStateWritesOneEventWithTheOrderAsItWas() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            let admin = try await fixtures.admin()
            let ann = try await fixtures.customer()
            let mug = try await fixtures.product(stock: 50)
            let placed = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 2)]), as: ann)
            let paid = try await stockroom.orders.pay(id: placed.id, as: admin)
            let shipped = try await stockroom.orders.ship(id: placed.id, as: admin)
            let delivered = try await stockroom.orders.deliver(id: placed.id, as: admin)
            let other = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 1)]), as: ann)
            let cancelled = try await stockroom.orders.cancel(id: other.id, as: ann)

            let events = try await Self.events(stockroom)
            #expect(events.map(\.type) == ["order.placed", "order.paid", "order.shipped", "order.delivered", "order.placed", "order.cancelled"])
            #expect(events.map(\.id) == Array(1...6))
            #expect(events.allSatisfy { $0.userID == ann.userID })
            #expect(events.map(\.subject) == [placed, paid, shipped, delivered, other, cancelled].map { .order($0) })
            #expect(events.map(\.subjectID) == [placed.id, placed.id, placed.id, placed.id, other.id, other.id])
        }
    }

    @Test func noChangeNoEvent() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            let ann = try await fixtures.customer()
            let mug = try await fixtures.product(stock: 1)
            await #expect(throws: StockroomError.self) {
                try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 2)]), as: ann)
            }
            let order = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 1)], idempotencyKey: "k"), as: ann)
            // A replay of the key, a refused transition, another customer's attempt.
            _ = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 1)], idempotencyKey: "k"), as: ann)
            await #expect(throws: StockroomError.self) { try await stockroom.orders.ship(id: order.id, as: try await fixtures.admin()) }
            await #expect(throws: StockroomError.self) { try await stockroom.orders.pay(id: order.id, as: try await fixtures.customer("Bo")) }
            #expect(try await Self.events(stockroom).map(\.type) == ["order.placed"])
        }
    }

    @Test func stockFallingToTheThresholdIsAnnouncedOnceUntilRestocked() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            let admin = try await fixtures.admin()
            let ann = try await fixtures.customer()
            let mug = try await fixtures.product(stock: 8)
            _ = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 2)]), as: ann)  // 6: above 5
            let crossing = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 1)]), as: ann)  // 5
            _ = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 1)]), as: ann)  // 4: still low
            _ = try await stockroom.products.restock(id: mug.id, quantity: 10, as: admin)  // 14
            _ = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 13)]), as: ann)  // 1
            let events = try await Self.events(stockroom)
            let low = events.filter { $0.type == "product.low_stock" }
            #expect(low.count == 2)
            guard case .product(let product, let threshold)? = low.first?.subject else { Issue.record("no product event"); return }
            #expect(product.id == mug.id && product.stock == 5 && threshold == 5 && product.sku == mug.sku)
            #expect(low.allSatisfy { $0.userID == nil && $0.subjectID == mug.id })
            // In the order's transaction: right after its placed event.
            let index = try #require(events.firstIndex { $0.subjectID == crossing.id && $0.type == "order.placed" })
            #expect(events[index + 1].type == "product.low_stock")
            // The threshold is a setting of the session.
            try await stockroom.pool.withConnection { connection in
                try await connection.query("UPDATE products SET stock = 150 WHERE id = \(mug.id)")  // up: no event
                try await connection.query("SELECT set_config('stockroom.low_stock_threshold', '100', false)")
                try await connection.query("UPDATE products SET stock = 50 WHERE id = \(mug.id)")
                try await connection.query("SELECT set_config('stockroom.low_stock_threshold', '', false)")
            }
            let after = try await Self.events(stockroom, after: events.last!.id)
            guard case .product(let restocked, 100)? = after.first?.subject else { Issue.record("\(after)"); return }
            #expect(restocked.stock == 50)
        }
    }

    @Test func customersSeeTheirOwnOrdersEventsOnly() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            let admin = try await fixtures.admin()
            let ann = try await fixtures.customer("Ann")
            let bo = try await fixtures.customer("Bo")
            let mug = try await fixtures.product(stock: 6)
            let annOrder = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 1)]), as: ann)
            let boOrder = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 1)]), as: bo)
            #expect(try await Self.events(stockroom, as: ann).map(\.subjectID) == [annOrder.id])
            #expect(try await Self.events(stockroom, as: bo).map(\.subjectID) == [boOrder.id])
            // 6 → 5 with Ann's order: the catalogue event, which only admins see.
            #expect(try await Self.events(stockroom, as: admin).map(\.type) == ["order.placed", "product.low_stock", "order.placed"])
            #expect(try await Self.events(stockroom, after: 1, as: admin).map(\.id) == [2, 3])
        }
    }

    /// The reason events are numbered after they commit. A transaction that wrote an event
    /// early and commits late must not be passed over by a reader that already saw a later
    /// write: its event gets the next id when it commits, not the id of when it was written.
    @Test func anEventCommittedLateIsNotPassedOver() async throws {
        try await TestStockroom.withStockroom(maxConnections: 4) { stockroom, fixtures in
            let ann = try await fixtures.customer()
            let mug = try await fixtures.product(stock: 50)
            let early = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 1)]), as: ann)
            _ = try await Self.events(stockroom)  // id 1
            let opened = AsyncStream<Void>.makeStream()
            let proceed = AsyncStream<Void>.makeStream()
            let slow = Task {
                try await stockroom.pool.withConnection { connection in
                    try await connection.withTransaction { connection in
                        // Written now, while the order below commits first.
                        try await connection.query("INSERT INTO order_status_history (order_id, status) VALUES (\(early.id), 'paid')")
                        opened.continuation.yield()
                        for await _ in proceed.stream { break }
                    }
                }
            }
            for await _ in opened.stream { break }
            let later = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 1)]), as: ann)
            let seen = try await Self.events(stockroom, after: 1)
            #expect(seen.map(\.subjectID) == [later.id])
            proceed.continuation.yield()
            try await slow.value
            // The reader goes on from the last id it saw, and still gets the late one.
            let caughtUp = try await Self.events(stockroom, after: seen.last!.id)
            #expect(caughtUp.map(\.type) == ["order.paid"] && caughtUp.map(\.subjectID) == [early.id])
            #expect(caughtUp.first?.id == 3)
        }
    }

    @Test func concurrentSequencersGiveEveryEventOneIdWithoutGaps() async throws {
        try await TestStockroom.withStockroom(maxConnections: 12) { stockroom, fixtures in
            let ann = try await fixtures.customer()
            let mug = try await fixtures.product(stock: 10_000)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        for _ in 0..<25 {
                            _ = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 1)]), as: ann)
                            try await stockroom.events.sequence()
                        }
                    }
                }
                try await group.waitForAll()
            }
            let events = try await Self.events(stockroom)
            #expect(events.map(\.id) == Array(1...100))
            #expect(Set(events.map(\.subjectID)).count == 100)
            // Numbered in the order they were written: each order's id grows with its event's.
            #expect(events.map(\.subjectID) == events.map(\.subjectID).sorted())
            #expect(try await stockroom.events.lastID() == 100)
        }
    }

    /// Order events are read back from the order's rows: an order deleted by hand leaves
    /// its events nothing to show, and they are skipped rather than failing the page.
    @Test func eventsOfAnOrderDeletedByHandAreSkipped() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            let ann = try await fixtures.customer()
            let mug = try await fixtures.product(stock: 50)
            let gone = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 1)]), as: ann)
            let kept = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 1)]), as: ann)
            _ = try await Self.events(stockroom)
            try await stockroom.pool.query("DELETE FROM orders WHERE id = \(gone.id)")
            #expect(try await Self.events(stockroom).map(\.subjectID) == [kept.id])
        }
    }

    @Test func oldEventsArePrunedInBatches() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            let ann = try await fixtures.customer()
            let mug = try await fixtures.product(stock: 50)
            for _ in 0..<7 { _ = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 1)]), as: ann) }
            _ = try await Self.events(stockroom)
            try await stockroom.pool.query("UPDATE events SET created_at = now() - interval '10 days' WHERE id <= 5")
            // Webhooks: events past the fan-out cursor, or with a delivery pending, stay.
            try await stockroom.pool.query("UPDATE webhook_cursor SET last_event_id = 4")
            try await stockroom.pool.query("INSERT INTO webhook_endpoints (url, events, secret) VALUES ('http://127.0.0.1:9/', '{order.*}', 'whsec_x')")
            try await stockroom.pool.query("INSERT INTO webhook_deliveries (endpoint_id, event_id) SELECT id, 2 FROM webhook_endpoints")
            #expect(try await stockroom.events.prune(createdBefore: Date().addingTimeInterval(-86400), batch: 2) == 3)
            #expect(try await Self.events(stockroom).map(\.id) == [2, 5, 6, 7])
            try await stockroom.pool.query("UPDATE webhook_cursor SET last_event_id = 7")
            try await stockroom.pool.query("UPDATE webhook_deliveries SET state = 'delivered'")
            #expect(try await stockroom.events.prune(createdBefore: Date().addingTimeInterval(-86400), batch: 2) == 2)
            #expect(try await Self.events(stockroom).map(\.id) == [6, 7])
            // Ids go on from the last one given, whatever was pruned.
            _ = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 1)]), as: ann)
            #expect(try await Self.events(stockroom, after: 7).map(\.id) == [8])
        }
    }

    /// Numbering reads what it numbers, not the whole table, from a fresh database's
    /// first minute on. Until autovacuum's first ANALYZE, PostgreSQL plans for a table of
    /// unknown size, and the pooled connection keeps the plan it made when the table was
    /// nearly empty. With the batch size bound, that plan starts from the index of
    /// unnumbered events and stops at the batch. With the size written into the text
    /// (tried), the plan kept was a bitmap scan through every dead entry numbering had
    /// left in that index, and a hash join over the whole table: four times the blocks
    /// at 60,000 events. Counted in blocks, not in time. Runs alone (see the Makefile): an
    /// open transaction elsewhere in the database keeps the dead entries alive.
    @Test func numberingABatchReadsAsMuchWhateverTheTableHolds() async throws {
        try await TestStockroom.withStockroom(maxConnections: 1) { stockroom, _ in
            let pool = stockroom.pool
            // No ANALYZE during the test: the window this is about.
            try await pool.query("ALTER TABLE events SET (autovacuum_enabled = off)")
            func add(_ count: Int) async throws {
                try await pool.query("INSERT INTO events (type, subject_id, payload) SELECT 'product.updated', g, '{}' FROM generate_series(1, \(count)) g")
            }
            func blocksToNumber(_ count: Int) async throws -> Int {
                try await add(count)
                let before = try await Self.blocksAccessed(pool)
                try await stockroom.events.sequence()
                return try await Self.blocksAccessed(pool) - before
            }
            // The plan is made, and kept, while the table is nearly empty.
            for _ in 0..<8 {
                try await add(2)
                try await stockroom.events.sequence()
            }
            for _ in 0..<60 {
                try await add(50)
                try await stockroom.events.sequence()
            }
            let small = try await blocksToNumber(50)
            // The shop gets busy: twenty times as many events, numbered as they come.
            for _ in 0..<1_140 {
                try await add(50)
                try await stockroom.events.sequence()
            }
            let large = try await blocksToNumber(50)
            #expect(try await pool.query("SELECT count(*) FROM events WHERE id IS NULL")[0][0, as: Int.self] == 0)
            #expect(large < 2 * small, "numbering 50 events read \(small) blocks among 3,000 events, \(large) among 60,000")
        }
    }

    /// Blocks of this schema's `events` and its indexes read or found cached, as the
    /// statistics system has them once this session's counts are flushed. With a pool of
    /// one connection, that session is the one that numbered.
    private static func blocksAccessed(_ pool: PostgresPool) async throws -> Int {
        // Takes effect when the session goes idle after this statement.
        try await pool.query("SELECT pg_stat_force_next_flush()")
        return try await pool.query("""
            SELECT (heap_blks_read + heap_blks_hit + coalesce(idx_blks_read, 0) + coalesce(idx_blks_hit, 0))::int8
            FROM pg_statio_user_tables WHERE relid = 'events'::regclass
            """)[0][0, as: Int.self]
    }
}
