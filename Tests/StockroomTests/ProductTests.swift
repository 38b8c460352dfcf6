import Foundation
import LibPQ
import Stockroom
import Testing

@Suite("Products")
struct ProductTests {
    @Test func createGetUpdateDeactivateRestock() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            let admin = try await fixtures.admin()
            let products = stockroom.products
            let created = try await products.create(NewProduct(sku: "MUG-1", name: "Mug", description: "A blue mug", priceCents: 1250, currency: "EUR", stock: 3), as: admin)
            #expect(created.active && created.stock == 3 && created.priceCents == 1250)
            #expect(try await products.product(id: created.id) == created)
            #expect(try await products.product(sku: "MUG-1") == created)

            let updated = try await products.update(id: created.id, ProductChanges(name: "Big mug", priceCents: 1500), as: admin)
            #expect(updated.name == "Big mug" && updated.priceCents == 1500 && updated.description == "A blue mug" && updated.stock == 3)
            #expect(updated.updatedAt >= created.updatedAt)

            let restocked = try await products.restock(id: created.id, quantity: 7, as: admin)
            #expect(restocked.stock == 10)
            let deactivated = try await products.deactivate(id: created.id, as: admin)
            #expect(!deactivated.active)
            #expect(try await products.list().isEmpty, "inactive products are hidden from customers")
            #expect(try await products.list(includeInactive: true).map(\.id) == [created.id])
        }
    }

    @Test func batchedLookupReturnsEachProductOnce() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            let a = try await fixtures.product(stock: 1)
            let b = try await fixtures.product(stock: 2)
            let c = try await fixtures.product(stock: 3)
            let inactive = try await stockroom.products.deactivate(id: try await fixtures.product(stock: 4).id, as: try await fixtures.admin())
            // Asked for twice by id, and by id and sku at once; missing keys are absent.
            let found = try await stockroom.products.products(ids: [a.id, a.id, b.id, 999_999_999, inactive.id], skus: [a.sku, c.sku, c.sku, "NO-SUCH-SKU"])
            #expect(found.map(\.id).sorted() == [a.id, b.id, c.id, inactive.id].sorted())
            #expect(found.first { $0.id == c.id } == c)
            #expect(try await stockroom.products.products(ids: [], skus: []).isEmpty)
            #expect(try await stockroom.products.products(ids: [], skus: [b.sku]).map(\.id) == [b.id])
        }
    }

    /// The service checks SKUs byte by byte; the database's `product_sku` domain holds the
    /// rule as a regular expression. Both must agree on the edges.
    @Test func skuRuleMatchesTheDatabaseDomain() async throws {
        let cases = [
            "A", "z9", "0", "a.b_c-d", String(repeating: "x", count: 64), String(repeating: "x", count: 65),
            "", ".a", "_a", "-a", "a b", "a/", "a@", "a[", "a`", "a{", "@a", "`a", "ä", "aé", "Å1", "a\n", "a\u{7F}", "a\r",
        ]
        try await TestStockroom.withStockroom { stockroom, _ in
            for sku in cases {
                let database = try await stockroom.pool.query("SELECT \(sku) ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'")[0][0, as: Bool.self]
                let service = (try? Product.validSKU(sku)) != nil
                #expect(service == database, "\(sku.debugDescription): the service says \(service), the domain \(database)")
            }
            let domain = try await stockroom.pool.query(
                "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c JOIN pg_type t ON t.oid = c.contypid WHERE t.typname = 'product_sku'")
            #expect(try domain[0][0, as: String.self].contains("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))
        }
    }

    @Test func everyBadInputNamesItsField() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            let admin = try await fixtures.admin()
            let valid = NewProduct(sku: "OK-1", name: "Ok", priceCents: 1, currency: "EUR")
            var cases: [(NewProduct, String)] = []
            var p = valid; p.sku = ""; cases.append((p, "sku"))
            p = valid; p.sku = "has space"; cases.append((p, "sku"))
            p = valid; p.sku = String(repeating: "a", count: 65); cases.append((p, "sku"))
            p = valid; p.name = " "; cases.append((p, "name"))
            p = valid; p.description = String(repeating: "d", count: 10_001); cases.append((p, "description"))
            p = valid; p.priceCents = -1; cases.append((p, "price_cents"))
            p = valid; p.currency = "eur"; cases.append((p, "currency"))
            p = valid; p.currency = "ABC"; cases.append((p, "currency"))
            p = valid; p.stock = -1; cases.append((p, "stock"))
            for (product, field) in cases {
                let error = await #expect(throws: StockroomError.self) { _ = try await stockroom.products.create(product, as: admin) }
                #expect(error?.code == .invalidInput)
                #expect(error?.field == field)
            }
            _ = try await stockroom.products.create(valid, as: admin)
            let duplicate = await #expect(throws: StockroomError.self) { _ = try await stockroom.products.create(valid, as: admin) }
            #expect(duplicate?.code == .conflict)
            #expect(duplicate?.field == "sku")
            let missing = await #expect(throws: StockroomError.self) { _ = try await stockroom.products.product(id: 999_999) }
            #expect(missing?.code == .notFound)
            await #expect(throws: StockroomError.self) { _ = try await stockroom.products.restock(id: 1, quantity: 0, as: admin) }
            await #expect(throws: StockroomError.self) { _ = try await stockroom.products.update(id: 1, ProductChanges(), as: admin) }
        }
    }

    @Test func customersCannotChangeTheCatalogue() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            let customer = try await fixtures.customer()
            let product = try await fixtures.product()
            let attempts: [@Sendable () async throws -> Product] = [
                { try await stockroom.products.create(NewProduct(sku: "X-1", name: "X", priceCents: 1, currency: "EUR"), as: customer) },
                { try await stockroom.products.update(id: product.id, ProductChanges(priceCents: 1), as: customer) },
                { try await stockroom.products.restock(id: product.id, quantity: 5, as: customer) },
                { try await stockroom.products.deactivate(id: product.id, as: customer) },
            ]
            for attempt in attempts {
                let error = await #expect(throws: StockroomError.self) { _ = try await attempt() }
                #expect(error?.code == .permissionDenied)
            }
            #expect(try await stockroom.products.product(id: product.id) == product)
        }
    }

    @Test func stockNeverGoesNegativeEvenBypassingTheRepository() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            let product = try await fixtures.product(stock: 1)
            let error = await #expect(throws: PostgresError.self) {
                try await stockroom.pool.query("UPDATE products SET stock = stock - 2 WHERE id = \(product.id)")
            }
            #expect(error?.constraint == "products_stock_nonnegative")
        }
    }

    @Test func keysetPaginationWalksEveryActiveProductOnce() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            var ids: [Int64] = []
            for n in 0..<12 { ids.append(try await fixtures.product(sku: "P-\(n)").id) }
            var seen: [Int64] = []
            var after: Int64 = 0
            while true {
                let page = try await stockroom.products.list(after: after, limit: 5)
                if page.isEmpty { break }
                seen += page.map(\.id)
                after = page.last!.id
            }
            #expect(seen == ids)
            for limit in [0, 501, -1] {
                let error = await #expect(throws: StockroomError.self) { _ = try await stockroom.products.list(limit: limit) }
                #expect(error?.field == "limit")
            }
        }
    }

    @Test func searchRanksByRelevanceAndHidesInactive() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            let admin = try await fixtures.admin()
            let kettle = try await fixtures.product(sku: "KET-1", name: "Electric kettle", description: "Boils water fast")
            let mug = try await fixtures.product(sku: "MUG-1", name: "Mug", description: "Good with tea from a kettle")
            let hidden = try await fixtures.product(sku: "KET-OLD", name: "Old kettle")
            _ = try await fixtures.product(sku: "CHAIR", name: "Chair", description: "Sit")
            _ = try await stockroom.products.deactivate(id: hidden.id, as: admin)

            let results = try await stockroom.products.search("kettles")
            #expect(results.map(\.id) == [kettle.id, mug.id])
            #expect(try await stockroom.products.search("kettle", includeInactive: true).count == 3)
            #expect(try await stockroom.products.search("\"electric kettle\" -mug").map(\.id) == [kettle.id])
            #expect(try await stockroom.products.search("KET-1").map(\.id).contains(kettle.id))
            #expect(try await stockroom.products.search("'; DROP TABLE products; --").isEmpty)
            await #expect(throws: StockroomError.self) { _ = try await stockroom.products.search("   ") }

            // The search vector follows renames (a trigger keeps it, migration 0004) and
            // stock changes leave it be.
            _ = try await stockroom.products.update(id: kettle.id, ProductChanges(name: "Electric teapot"), as: admin)
            _ = try await stockroom.products.restock(id: kettle.id, quantity: 3, as: admin)
            #expect(try await stockroom.products.search("teapot").map(\.id) == [kettle.id])
            #expect(try await stockroom.products.search("electric").map(\.id) == [kettle.id])
            #expect(try await stockroom.products.search("kettles").map(\.id) == [mug.id])
        }
    }
}
