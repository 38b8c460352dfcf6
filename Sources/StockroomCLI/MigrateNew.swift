import ArgumentParser
import Foundation
import Migrations

struct MigrateNew: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "new", abstract: "Write the next numbered up/down pair.")

    @Option(help: "The folder of migration files.")
    var dir: String = "migrations"

    @Argument(help: "What the migration does, e.g. add_product_tags.")
    var title: String

    func run() async throws {
        let slug = title.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }
            .reduce(into: "") { text, c in if !(c == "_" && text.hasSuffix("_")) { text.append(c) } }
            .trimmingCharacters(in: CharacterSet(charactersIn: "_"))
        guard !slug.isEmpty, slug.unicodeScalars.allSatisfy(\.isASCII) else {
            fail("migrate new", "the title needs ASCII letters or digits, e.g. add_product_tags")
        }
        let directory = URL(fileURLWithPath: dir)
        try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let existing: [Migration]
        do { existing = try MigrationDirectory.load(directory) } catch { fail("migrate new", error.message) }
        let version = MigrationNaming.nextVersion(after: existing.map(\.version), widthOf: existing.last.map { ($0.up.path as NSString).lastPathComponent })
        for (kind, body) in [("up", "-- \(slug): the change.\n"), ("down", "-- \(slug): undo the change.\n")] {
            let path = directory.appendingPathComponent("\(version)_\(slug).\(kind).sql").path
            guard FileManager.default.createFile(atPath: path, contents: Data(body.utf8)) else { fail("migrate new", "cannot write \(path)") }
            print(path)
        }
    }
}
