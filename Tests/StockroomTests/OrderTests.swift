import Foundation
import LibPQ
import Stockroom
import Testing

@Suite("Orders")
struct OrderTests {
    typealias Line = OrderRequest.Line

    func stock(_ stockroom: Stockroom, _ id: Int64) async throws -> Int {
        try await stockroom.products.product(id: id).stock
    }

    @Test func placingSnapshotsPricesAndDecrementsStock() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            let ann = try await fixtures.customer()
            let admin = try await fixtures.admin()
            let mug = try await fixtures.product(name: "Mug", price: 1250, stock: 5)
            let pot = try await fixtures.product(name: "Pot", price: 4000, stock: 2)
            let order = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: pot.id, quantity: 1), Line(productID: mug.id, quantity: 2), Line(productID: mug.id, quantity: 1)]), as: ann)
            #expect(order.status == .pending)
            #expect(order.userID == ann.userID)
            #expect(order.currency == "EUR")
            #expect(order.subtotalCents == 3 * 1250 + 4000)
            #expect(order.totalCents == order.subtotalCents)
            #expect(order.lines.count == 2, "the same product twice is merged")
            let mugLine = try #require(order.lines.first { $0.productID == mug.id })
            #expect(mugLine.quantity == 3 && mugLine.unitPriceCents == 1250 && mugLine.lineTotalCents == 3750 && mugLine.name == "Mug")
            #expect(order.history.map(\.status) == [.pending])
            #expect(try await stock(stockroom, mug.id) == 2)
            #expect(try await stock(stockroom, pot.id) == 1)

            // A later price change leaves the order alone.
            _ = try await stockroom.products.update(id: mug.id, ProductChanges(name: "Renamed", priceCents: 9999), as: admin)
            let reread = try await stockroom.orders.order(id: order.id, as: ann)
            #expect(reread.lines == order.lines)
            #expect(reread.subtotalCents == order.subtotalCents)
            // The order place() returns, built from its one statement, is the order as read.
            #expect(reread == order)
        }
    }

    @Test func nothingIsWrittenWhenAnyLineFails() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            let ann = try await fixtures.customer()
            let admin = try await fixtures.admin()
            let mug = try await fixtures.product(stock: 5)
            let scarce = try await fixtures.product(stock: 1)
            let retired = try await fixtures.product(stock: 9)
            _ = try await stockroom.products.deactivate(id: retired.id, as: admin)
            let dollars = try await fixtures.product(currency: "USD", stock: 9)

            let out = await #expect(throws: StockroomError.self) {
                _ = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 1), Line(productID: scarce.id, quantity: 2)]), as: ann)
            }
            #expect(out?.code == .outOfStock)
            #expect(out?.productID == scarce.id)
            #expect(out?.available == 1)

            let inactive = await #expect(throws: StockroomError.self) {
                _ = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 1), Line(productID: retired.id, quantity: 1)]), as: ann)
            }
            #expect(inactive?.code == .invalidInput)
            let missing = await #expect(throws: StockroomError.self) {
                _ = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 1), Line(productID: 987_654, quantity: 1)]), as: ann)
            }
            #expect(missing?.code == .notFound)
            let mixed = await #expect(throws: StockroomError.self) {
                _ = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 1), Line(productID: dollars.id, quantity: 1)]), as: ann)
            }
            #expect(mixed?.code == .invalidInput)
            #expect(mixed?.message.contains("currency") == true)

            for bad in [[], Array(repeating: Line(productID: mug.id, quantity: 1), count: 101), [Line(productID: mug.id, quantity: 0)], [Line(productID: -1, quantity: 1)], [Line(productID: mug.id, quantity: 1_000_001)]] {
                let error = await #expect(throws: StockroomError.self) { _ = try await stockroom.orders.place(OrderRequest(lines: bad), as: ann) }
                #expect(error?.code == .invalidInput)
            }
            #expect(try await stock(stockroom, mug.id) == 5)
            #expect(try await stock(stockroom, scarce.id) == 1)
            #expect(try await stockroom.pool.query("SELECT (SELECT count(*) FROM orders) + (SELECT count(*) FROM order_lines) + (SELECT count(*) FROM order_status_history)")[0][0, as: Int.self] == 0)
        }
    }

    @Test func totalsThatWouldOverflowAreRejected() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            let ann = try await fixtures.customer()
            var lines: [Line] = []
            for _ in 0..<2 {
                let costly = try await fixtures.product(price: 10_000_000_000_000, stock: 1_000_000)
                lines.append(Line(productID: costly.id, quantity: 1_000_000))
            }
            let error = await #expect(throws: StockroomError.self) { _ = try await stockroom.orders.place(OrderRequest(lines: lines), as: ann) }
            #expect(error?.code == .invalidInput)
            #expect(error?.message.contains("total") == true)
        }
    }

    @Test func idempotencyKeysReturnTheOriginalOrder() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            let ann = try await fixtures.customer()
            let bob = try await fixtures.customer()
            let mug = try await fixtures.product(stock: 10)
            let request = OrderRequest(lines: [Line(productID: mug.id, quantity: 2)], idempotencyKey: "checkout-1")
            let first = try await stockroom.orders.place(request, as: ann)
            let again = try await stockroom.orders.place(request, as: ann)
            #expect(again == first)
            #expect(try await stock(stockroom, mug.id) == 8)
            let different = await #expect(throws: StockroomError.self) {
                _ = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 3)], idempotencyKey: "checkout-1"), as: ann)
            }
            #expect(different?.code == .conflict)
            // Keys are per user.
            let bobs = try await stockroom.orders.place(request, as: bob)
            #expect(bobs.id != first.id)
            #expect(try await stock(stockroom, mug.id) == 6)
        }
    }

    @Test func sameIdempotencyKeyTwentyTimesAtOncePlacesOneOrder() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            let ann = try await fixtures.customer()
            let mug = try await fixtures.product(stock: 100)
            let request = OrderRequest(lines: [Line(productID: mug.id, quantity: 1)], idempotencyKey: "double-click")
            let ids = try await withThrowingTaskGroup(of: Int64.self) { group in
                for _ in 0..<20 { group.addTask { try await stockroom.orders.place(request, as: ann).id } }
                return try await group.reduce(into: Set<Int64>()) { $0.insert($1) }
            }
            #expect(ids.count == 1)
            #expect(try await stock(stockroom, mug.id) == 99)
            #expect(try await stockroom.pool.query("SELECT count(*) FROM orders")[0][0, as: Int.self] == 1)
        }
    }

    @Test func sixtyFourBuyersForTenUnitsNeverOversell() async throws {
        try await TestStockroom.withStockroom(maxConnections: 16) { stockroom, fixtures in
            var buyers: [Principal] = []
            for n in 0..<8 { buyers.append(try await fixtures.customer("Buyer \(n)")) }
            let mug = try await fixtures.product(stock: 10)
            let outcomes = await withTaskGroup(of: Result<Order, StockroomError>.self) { group in
                for n in 0..<64 {
                    let buyer = buyers[n % buyers.count]
                    group.addTask {
                        do { return .success(try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 1)]), as: buyer)) }
                        catch let error as StockroomError { return .failure(error) }
                        catch { return .failure(StockroomError(.unavailable, "\(error)")) }
                    }
                }
                return await group.reduce(into: [Result<Order, StockroomError>]()) { $0.append($1) }
            }
            let placed = outcomes.compactMap { try? $0.get() }
            let failures = outcomes.compactMap { if case .failure(let error) = $0 { error } else { nil } }
            #expect(placed.count == 10)
            #expect(failures.count == 54)
            #expect(failures.allSatisfy { $0.code == .outOfStock && $0.available == 0 }, "\(failures.map(\.description).prefix(3))")
            #expect(try await stock(stockroom, mug.id) == 0)
            let ordered = try await stockroom.pool.query("SELECT coalesce(sum(quantity), 0)::int8 FROM order_lines WHERE product_id = \(mug.id)")[0][0, as: Int.self]
            #expect(ordered == 10)
        }
    }

    @Test func overlappingOrdersInOppositeOrderDoNotDeadlock() async throws {
        try await TestStockroom.withStockroom(maxConnections: 16) { stockroom, fixtures in
            let buyer = try await fixtures.customer()
            var products: [Product] = []
            for _ in 0..<4 { products.append(try await fixtures.product(stock: 1000)) }
            let ids = products.map(\.id)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in 0..<40 {
                    let lines = (n.isMultiple(of: 2) ? ids : ids.reversed()).map { Line(productID: $0, quantity: 1) }
                    group.addTask { _ = try await stockroom.orders.place(OrderRequest(lines: lines), as: buyer) }
                }
                try await group.waitForAll()
            }
            for id in ids { #expect(try await stock(stockroom, id) == 960) }
        }
    }

    @Test func stateMachineAndPermissions() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            let ann = try await fixtures.customer()
            let bob = try await fixtures.customer()
            let admin = try await fixtures.admin()
            let mug = try await fixtures.product(stock: 10)
            let order = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 2)]), as: ann)

            // Others' orders are invisible to customers.
            let hidden = await #expect(throws: StockroomError.self) { _ = try await stockroom.orders.order(id: order.id, as: bob) }
            #expect(hidden?.code == .notFound)
            await #expect(throws: StockroomError.self) { _ = try await stockroom.orders.pay(id: order.id, as: bob) }
            // Customers pay through the processor; a manual payment is an admin's.
            let selfPaid = await #expect(throws: StockroomError.self) { _ = try await stockroom.orders.pay(id: order.id, as: ann) }
            #expect(selfPaid?.code == .permissionDenied)
            let noShip = await #expect(throws: StockroomError.self) { _ = try await stockroom.orders.ship(id: order.id, as: ann) }
            #expect(noShip?.code == .permissionDenied)
            let early = await #expect(throws: StockroomError.self) { _ = try await stockroom.orders.ship(id: order.id, as: admin) }
            #expect(early?.code == .invalidState)
            #expect(early?.currentState == .pending)
            #expect(early?.message.contains("pending") == true)

            _ = try await stockroom.orders.pay(id: order.id, as: admin)
            _ = try await stockroom.orders.ship(id: order.id, as: admin)
            let late = await #expect(throws: StockroomError.self) { _ = try await stockroom.orders.cancel(id: order.id, as: ann) }
            #expect(late?.currentState == .shipped)
            let delivered = try await stockroom.orders.deliver(id: order.id, as: admin)
            #expect(delivered.status == .delivered)
            #expect(delivered.history.map(\.status) == [.pending, .paid, .shipped, .delivered])
            #expect(delivered.history.last?.changedBy == admin.userID)
            #expect(try await stock(stockroom, mug.id) == 8)

            let other = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 3)]), as: ann)
            _ = try await stockroom.orders.pay(id: other.id, as: admin)
            #expect(try await stock(stockroom, mug.id) == 5)
            let cancelled = try await stockroom.orders.cancel(id: other.id, as: ann)
            #expect(cancelled.status == .cancelled)
            #expect(try await stock(stockroom, mug.id) == 8, "cancelling restocks")
            let twice = await #expect(throws: StockroomError.self) { _ = try await stockroom.orders.cancel(id: other.id, as: ann) }
            #expect(twice?.currentState == .cancelled)

            #expect(try await stockroom.orders.list(as: ann).map(\.id) == [order.id, other.id])
            #expect(try await stockroom.orders.list(as: bob).isEmpty)
            #expect(try await stockroom.orders.list(status: .cancelled, as: admin).map(\.id) == [other.id])
            #expect(try await stockroom.orders.list(userID: ann.userID, after: order.id, as: admin).map(\.id) == [other.id])
            await #expect(throws: StockroomError.self) { _ = try await stockroom.orders.list(userID: ann.userID, as: bob) }
            await #expect(throws: StockroomError.self) { _ = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 1)]), for: ann.userID, as: bob) }
            let forAnn = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 1)]), for: ann.userID, as: admin)
            #expect(forAnn.userID == ann.userID)
        }
    }

    @Test func cancelRacingShipHasExactlyOneWinner() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            let ann = try await fixtures.customer()
            let admin = try await fixtures.admin()
            let mug = try await fixtures.product(stock: 50)
            for _ in 0..<10 {
                let order = try await stockroom.orders.place(OrderRequest(lines: [Line(productID: mug.id, quantity: 5)]), as: ann)
                _ = try await stockroom.orders.pay(id: order.id, as: admin)
                async let cancel = Result(catching: { try await stockroom.orders.cancel(id: order.id, as: ann) })
                async let ship = Result(catching: { try await stockroom.orders.ship(id: order.id, as: admin) })
                let (cancelled, shipped) = await (cancel, ship)
                let winners = [cancelled, shipped].filter { (try? $0.get()) != nil }
                #expect(winners.count == 1)
                let final = try await stockroom.orders.order(id: order.id, as: admin)
                let expectedStock = final.status == .cancelled ? 50 : 45
                #expect(try await stock(stockroom, mug.id) == expectedStock)
                if final.status == .shipped {
                    // Put the stock back to 50 for the next round.
                    _ = try await stockroom.products.restock(id: mug.id, quantity: 5, as: admin)
                }
            }
        }
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
