import Foundation
import LibPQ
import Testing
@testable import Migrations

/// The recipes of docs/MIGRATIONS.md ("Changing a busy table"), kept as migration folders
/// in docs/safe-changes: each lints clean, applies, and keeps the rows it found. The
/// first file of each stands for the production table.
@Suite("docs/safe-changes: the documented recipes lint clean and apply")
struct SafeChangesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/safe-changes")
    static let recipes = ["add-required-column", "add-foreign-key", "replace-column"]

    @Test(arguments: recipes)
    func aRecipeLintsCleanAndApplies(_ recipe: String) async throws {
        let directory = Self.root.appendingPathComponent(recipe)
        #expect(try MigrationLinter.lint(directory: directory, startAfter: MigrationVersion("1")).map(\.description) == [])
        try await TestDatabase.withDatabase { url in
            let migrator = Migrator(databaseURL: url, configuration: .init(directory: directory), logger: quietLogger)
            let applied = try await migrator.up()
            #expect(applied.count == (try MigrationDirectory.load(directory).count))
            let connection = try await PostgresConnection.connect(url)
            #expect(try await connection.query("SELECT count(*) FROM orders")[0][0, as: Int.self] == 20000)
            await connection.close()
        }
    }

    /// Rehearsed over the 20,000 orders, file by file as a deploy applies them (each on
    /// the schema its predecessors left): no existing table is rewritten, and validation
    /// scans hold only SHARE UPDATE EXCLUSIVE, which lets reads and writes go on. Catalog
    /// changes take ACCESS EXCLUSIVE for a moment; the no-transaction files (backfills,
    /// CREATE INDEX CONCURRENTLY) are not rehearsed, since they cannot be rolled back.
    @Test(arguments: recipes)
    func aRecipeRehearsesWithoutRewritesOrLongLocks(_ recipe: String) async throws {
        let directory = Self.root.appendingPathComponent(recipe)
        try await TestDatabase.withDatabase { url in
            let migrator = Migrator(databaseURL: url, configuration: .init(directory: directory), logger: quietLogger)
            try await migrator.up(to: MigrationVersion("1")!)
            for migration in try MigrationDirectory.load(directory).dropFirst() {
                let rehearsal = try #require(try await migrator.rehearse(to: migration.version).last)
                #expect(rehearsal.failure == nil, "\(rehearsal.title): \(String(describing: rehearsal.failure))")
                #expect(rehearsal.rewritten == [], "\(rehearsal.title)")
                if rehearsal.title.hasPrefix("validate") {
                    #expect(rehearsal.locks.filter { $0.relation == "public.orders" }.map(\.mode) == [.shareUpdateExclusive], "\(rehearsal.title)")
                }
                try await migrator.up(to: migration.version)
            }
        }
    }

    @Test func theQuickWayIsFoundOut() async throws {
        let directory = Self.root.appendingPathComponent("unsafe")
        let findings = try MigrationLinter.lint(directory: directory, startAfter: MigrationVersion("1"))
        #expect(findings.map(\.rule.id) == ["constraint-not-valid", "alter-column-type", "rename", "index-not-concurrent"])
        try await TestDatabase.withDatabase { url in
            let migrator = Migrator(databaseURL: url, configuration: .init(directory: directory), logger: quietLogger)
            try await migrator.up(to: MigrationVersion("1")!)
            let rehearsal = try #require(try await migrator.rehearse().first)
            #expect(rehearsal.rewritten.contains("public.orders"))
            let orders = try #require(rehearsal.locks.first { $0.relation == "public.orders" })
            #expect(orders.mode == .accessExclusive && orders.rows == 20000 && orders.rewritten)
        }
    }
}
