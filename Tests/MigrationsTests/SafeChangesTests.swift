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

    @Test func theQuickWayIsFoundOut() throws {
        let findings = try MigrationLinter.lint(directory: Self.root.appendingPathComponent("unsafe"), startAfter: MigrationVersion("1"))
        #expect(findings.map(\.rule.id) == ["constraint-not-valid", "alter-column-type", "rename", "index-not-concurrent"])
    }
}
