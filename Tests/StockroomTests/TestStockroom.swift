import Foundation
import LibPQ
import Logging
import Migrations
import Stockroom

/// A Stockroom on a schema of its own, migrated from migrations/, dropped afterwards:
/// tests run in parallel without seeing each other's rows.
enum TestStockroom {
    static let url = StockroomDatabase.urlFromEnvironment(ProcessInfo.processInfo.environment)
    static let migrations = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("migrations")

    /// The runner logs each migration at info: three lines per test would bury failures.
    static let quietLogger: Logger = {
        var logger = Logger(label: "StockroomTests.migrations")
        logger.logLevel = .warning
        return logger
    }()

    /// Fast parameters for tests that are not about hashing.
    static let fastHasher = PasswordHasher(operations: 1, memoryBytes: 1 << 20)

    static func withStockroom<T>(
        hasher: PasswordHasher = fastHasher,
        maxConnections: Int = 8,
        sessionLifetime: Duration = .seconds(3600),
        migratedTo version: MigrationVersion? = nil,
        isolation actor: isolated (any Actor)? = #isolation,
        _ body: (Stockroom, Fixtures) async throws -> T
    ) async throws -> T {
        let schema = "s_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let admin = try await PostgresConnection.connect(url)
        try await admin.query("SET client_min_messages = warning")
        try await admin.query("CREATE SCHEMA \(identifier: schema)")
        let separator = url.contains("?") ? "&" : "?"
        let conninfo = url + separator + "options=-csearch_path%3D\(schema)"
        // The schema comes from migrations/ through the runner, as in production; the
        // history table lands in the test's own schema (first in its search path).
        var configuration = Migrator.Configuration(directory: migrations)
        configuration.historySchema = schema
        // Migration 0007 builds an index CONCURRENTLY, which waits for every transaction
        // of the database older than it — other tests' too (LibPQTests freeze backends
        // for seconds on purpose). Here that is a wait, not a failure.
        configuration.lockTimeout = .seconds(60)
        let migrator = Migrator(databaseURL: conninfo, configuration: configuration, logger: quietLogger)
        try await migrator.up(to: version)

        let pool = PostgresPool(configuration: .init(connection: .init(conninfo), maxConnections: maxConnections, acquireTimeout: .seconds(30)))
        let stockroom = Stockroom(pool: pool, passwordHasher: hasher, sessionLifetime: sessionLifetime)
        let fixtures = Fixtures(stockroom: stockroom, migrator: migrator)
        func cleanUp() async {
            await pool.close()
            _ = try? await admin.query("DROP SCHEMA \(identifier: schema) CASCADE")
            await admin.close()
        }
        do {
            let value = try await body(stockroom, fixtures)
            await cleanUp()
            return value
        } catch {
            await cleanUp()
            throw error
        }
    }
}

/// Helpers that create the users and products a test needs.
struct Fixtures: Sendable {
    let stockroom: Stockroom
    /// The test schema's runner: for tests that start below the newest version.
    let migrator: Migrator

    func admin() async throws -> Principal {
        let user = try await stockroom.accounts.register(email: "admin-\(UUID().uuidString.prefix(8))@example.com", name: "Admin", password: "admin password", role: .admin)
        return Principal(user)
    }

    func customer(_ name: String = "Ann Lee") async throws -> Principal {
        let user = try await stockroom.accounts.register(email: "\(UUID().uuidString.prefix(8))@example.com", name: name, password: "customer password")
        return Principal(user)
    }

    func product(sku: String = "SKU-\(UUID().uuidString.prefix(8))", name: String = "Widget", description: String = "", price: Int64 = 1000, currency: String = "EUR", stock: Int = 10) async throws -> Product {
        try await stockroom.products.create(NewProduct(sku: sku, name: name, description: description, priceCents: price, currency: currency, stock: stock), as: try await admin())
    }
}
