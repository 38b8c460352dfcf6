import LibPQ
import Migrations
import Stockroom
import Testing

/// Migrations are applied to a database that a running service keeps using.
@Suite("Migrating under a running service")
struct LiveMigrationTests {
    /// 0005 changes the types of products' columns, which the statements that read a
    /// product or place an order return. The server refuses a cached plan whose result
    /// types changed; the repositories must go on working, without a restart.
    @Test func repositoriesKeepWorkingThroughMigration0005() async throws {
        // One connection: every statement below is prepared on it before the migration.
        try await TestStockroom.withStockroom(maxConnections: 1, migratedTo: MigrationVersion("4")!) { stockroom, fixtures in
            let ann = try await fixtures.customer()
            let mug = try await fixtures.product(sku: "MUG-01", stock: 10)
            let order = OrderRequest(lines: [OrderRequest.Line(productID: mug.id, quantity: 1)])
            func exercise() async throws {
                _ = try await stockroom.orders.place(order, as: ann)
                #expect(try await stockroom.products.product(sku: "MUG-01").id == mug.id)
                #expect(try await stockroom.products.products(ids: [mug.id], skus: ["MUG-01"]).map(\.id) == [mug.id])
            }
            try await exercise()

            #expect(try await fixtures.migrator.up(to: MigrationVersion("5")!).map(\.version.digits) == ["5"])

            try await exercise()
            #expect(try await stockroom.products.product(id: mug.id).stock == 8)
        }
    }
}
