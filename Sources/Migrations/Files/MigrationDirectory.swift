public import Foundation

/// Reads a folder of golang-migrate style files: `<version>_<title>.up.sql` and an
/// optional `<version>_<title>.down.sql`. Files not ending in `.sql` are ignored (a
/// README may live there); a `.sql` file whose name does not fit is an error.
public enum MigrationDirectory {
    public static func load(_ directory: URL) throws(MigrationError) -> [Migration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw MigrationError(.unreadableFile, "cannot read the migrations folder \(directory.path): \(error.localizedDescription)")
        }
        var ups: [MigrationVersion: (title: String, name: String)] = [:]
        var downs: [MigrationVersion: (title: String, name: String)] = [:]
        var badNames: [String] = []
        for name in names.sorted() where name.hasSuffix(".sql") {
            guard let parsed = parse(name) else { badNames.append(name); continue }
            let existing = parsed.isUp ? ups[parsed.version] : downs[parsed.version]
            if let existing {
                throw MigrationError(.duplicateVersion, "two \(parsed.isUp ? "up" : "down") files for version \(parsed.version): \(existing.name) and \(name)")
            }
            if parsed.isUp { ups[parsed.version] = (parsed.title, name) } else { downs[parsed.version] = (parsed.title, name) }
        }
        if !badNames.isEmpty {
            throw MigrationError(.invalidFileName, "not a migration file name (expected <version>_<title>.up.sql or .down.sql): \(badNames.joined(separator: ", "))")
        }
        if let orphan = downs.keys.sorted().first(where: { ups[$0] == nil }) {
            throw MigrationError(.duplicateVersion, "\(downs[orphan]!.name) has no matching up file")
        }
        var migrations: [Migration] = []
        for version in ups.keys.sorted() {
            let up = ups[version]!
            let down = try downs[version].map { down throws(MigrationError) in try script(directory, down.name) }
            migrations.append(Migration(version: version, title: up.title, up: try script(directory, up.name), down: down))
        }
        return migrations
    }

    /// `0001_create_users.up.sql` → (1, "create_users", up).
    static func parse(_ name: String) -> (version: MigrationVersion, title: String, isUp: Bool)? {
        let isUp = name.hasSuffix(".up.sql")
        guard isUp || name.hasSuffix(".down.sql") else { return nil }
        let stem = name.dropLast(isUp ? 7 : 9)
        guard let underscore = stem.firstIndex(of: "_"),
              let version = MigrationVersion(stem[..<underscore]) else { return nil }
        let title = String(stem[stem.index(after: underscore)...])
        guard !title.isEmpty else { return nil }
        return (version, title, isUp)
    }

    private static func script(_ directory: URL, _ name: String) throws(MigrationError) -> MigrationScript {
        let url = directory.appendingPathComponent(name)
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw MigrationError(.unreadableFile, "cannot read \(url.path): \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw MigrationError(.unreadableFile, "\(url.path) is not UTF-8")
        }
        return try MigrationScript(path: url.path, contents: text)
    }
}
