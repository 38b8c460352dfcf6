import Foundation
import LibPQ
import Migrations
import Testing

/// 0005 moves products' format rules from table constraints to domains: a schema change a
/// production database goes through with its data, so it is tested with data, both ways.
@Suite("Migration 0005: product rules as domains")
struct ProductRulesMigrationTests {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("migrations")

    /// A value of one of products' columns, bound as its own type.
    enum Value: Sendable {
        case text(String)
        case integer(Int64)
    }

    /// One bad value per rule, with the constraint that must refuse it. The service maps
    /// these names to field errors, so they must survive the move.
    static let violations: [(column: String, value: Value, constraint: String)] = [
        ("sku", .text("has space"), "products_sku_format"),
        ("name", .text(""), "products_name_length"),
        ("description", .text(String(repeating: "x ", count: 5_001)), "products_description_length"),
        ("price_cents", .integer(-1), "products_price_nonnegative"),
        ("currency", .text("eur"), "products_currency_format"),
    ]

    @Test func rulesKeepTheirNamesDataStaysInPlaceAndDownRestoresTheSchema() async throws {
        try await TestDatabase.withDatabase { url in
            let migrator = Migrator(databaseURL: url, configuration: .init(directory: Self.directory), logger: quietLogger)
            try await migrator.up(to: MigrationVersion("4")!)
            let before = try await schemaDump(url)
            let connection = try await PostgresConnection.connect(url)
            try await connection.query("""
                INSERT INTO products (sku, name, description, price_cents, currency, stock)
                VALUES ('MUG-01', 'Mug', 'A mug', 1200, 'EUR', 5)
                """)
            let files = try await Self.fileNodes(connection)

            try await migrator.up(to: MigrationVersion("5")!)
            // Relabelled, not rewritten: the table and its indexes keep their files.
            #expect(try await Self.fileNodes(connection) == files)
            try await Self.expectEveryRuleHolds(connection)
            // A stock change leaves the format rules alone, and the stock rule still holds.
            try await connection.query("UPDATE products SET stock = stock - 5 WHERE sku = 'MUG-01'")
            let negative = await #expect(throws: PostgresError.self) {
                try await connection.query("UPDATE products SET stock = stock - 1 WHERE sku = 'MUG-01'")
            }
            #expect(negative?.constraint == "products_stock_nonnegative")

            try await migrator.down(.steps(1))
            #expect(try await schemaDump(url) == before)
            try await Self.expectEveryRuleHolds(connection)
            let row = try await connection.query("SELECT sku, name, description, price_cents, currency, stock FROM products").first!
            #expect(try [row[0, as: String.self], row[1, as: String.self], row[2, as: String.self], row[4, as: String.self]] == ["MUG-01", "Mug", "A mug", "EUR"])
            #expect(try row[3, as: Int64.self] == 1200 && row[5, as: Int32.self] == 0)
            await connection.close()
        }
    }

    /// Each bad value is refused under its rule's name, on INSERT and on an UPDATE that
    /// sets it; nothing is written.
    static func expectEveryRuleHolds(_ connection: PostgresConnection) async throws {
        for (column, value, constraint) in violations {
            var row: [String: Value] = ["sku": .text("OK-1"), "name": .text("Ok"), "description": .text(""), "price_cents": .integer(1), "currency": .text("EUR")]
            row[column] = value
            func bound(_ name: String) -> Value { row[name]! }
            let inserted = await #expect(throws: PostgresError.self) {
                try await connection.query("""
                    INSERT INTO products (sku, name, description, price_cents, currency)
                    VALUES (\(bound("sku")), \(bound("name")), \(bound("description")), \(bound("price_cents")), \(bound("currency")))
                    """)
            }
            #expect(inserted?.constraint == constraint, "INSERT with a bad \(column)")
            let updated = await #expect(throws: PostgresError.self) {
                try await connection.query("UPDATE products SET \(unsafeRaw: column) = \(value) WHERE sku = 'MUG-01'")
            }
            #expect(updated?.constraint == constraint, "UPDATE of \(column)")
            #expect(updated?.sqlState == .checkViolation)
        }
        #expect(try await connection.query("SELECT count(*) FROM products").first![0, as: Int64.self] == 1)
    }

    static func fileNodes(_ connection: PostgresConnection) async throws -> [String] {
        try await connection.query("""
            SELECT c.relname || ':' || pg_relation_filenode(c.oid) FROM pg_class c
            WHERE c.oid = 'products'::regclass
               OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = 'products'::regclass)
            ORDER BY c.relname
            """).map { try $0[0, as: String.self] }
    }
}

extension PostgresQuery.StringInterpolation {
    mutating func appendInterpolation(_ value: ProductRulesMigrationTests.Value) {
        switch value {
        case .text(let text): appendInterpolation(text)
        case .integer(let integer): appendInterpolation(integer)
        }
    }
}
