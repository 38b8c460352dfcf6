import Foundation
import LibPQ
import Logging
import Migrations
import Testing

/// A database of its own per test (migrations create schemas, extensions and indexes, and
/// pg_dump compares whole databases), and a folder of migration files of its own.
enum TestDatabase {
    static let url = ProcessInfo.processInfo.environment["DATABASE_URL"] ?? "postgres://stockroom:stockroom@127.0.0.1:54320/stockroom"

    /// `url` with another database name.
    static func url(database: String) -> String {
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            let (base, query) = url.firstIndex(of: "?").map { (String(url[..<$0]), String(url[$0...])) } ?? (url, "")
            let slash = base.lastIndex(of: "/")!
            let authority = base[..<slash]
            return authority.hasSuffix("/") ? base + database + query : authority + "/" + database + query
        }
        return url + " dbname=\(database)"
    }

    static func withDatabase<T>(
        isolation actor: isolated (any Actor)? = #isolation,
        _ body: (String) async throws -> T
    ) async throws -> T {
        let name = "m_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let admin = try await PostgresConnection.connect(url)
        try await admin.query("CREATE DATABASE \(identifier: name)")
        do {
            let value = try await body(url(database: name))
            try await drop(name, admin)
            await admin.close()
            return value
        } catch {
            _ = try? await drop(name, admin)
            await admin.close()
            throw error
        }
    }

    /// DROP DATABASE … WITH (FORCE), again a little later when it meets a process of a
    /// role it may not terminate: an autovacuum worker that just started on the database
    /// (42501, seen on a loaded fresh clone). It is gone a moment later.
    static func drop(_ name: String, _ admin: PostgresConnection) async throws {
        for attempt in 1... {
            do {
                try await admin.query("DROP DATABASE \(identifier: name) WITH (FORCE)")
                return
            } catch let error as PostgresError where error.sqlState == .insufficientPrivilege && attempt < 20 {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }
}

/// A temporary folder of migration files.
final class MigrationFolder: Sendable {
    let url: URL

    init(_ files: [String: String] = [:]) throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("migrations-" + UUID().uuidString)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        for (name, contents) in files { try write(name, contents) }
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func write(_ name: String, _ contents: String) throws {
        try Data(contents.utf8).write(to: url.appendingPathComponent(name))
    }

    func remove(_ name: String) throws {
        try FileManager.default.removeItem(at: url.appendingPathComponent(name))
    }

    func migrator(_ databaseURL: String, _ adjust: (inout Migrator.Configuration) -> Void = { _ in }) -> Migrator {
        var configuration = Migrator.Configuration(directory: url)
        adjust(&configuration)
        return Migrator(databaseURL: databaseURL, configuration: configuration, logger: quietLogger)
    }
}

/// The runner logs each migration at info; hundreds of those would bury a failing test.
let quietLogger: Logger = {
    var logger = Logger(label: "MigrationsTests")
    logger.logLevel = .warning
    return logger
}()

extension PostgresConnection {
    func exists(_ relation: String) async throws -> Bool {
        try await query("SELECT to_regclass(\(relation)) IS NOT NULL").first![0, as: Bool.self]
    }

    func count(_ sql: String) async throws -> Int {
        try await query(PostgresQuery(unsafeSQL: sql)).first![0, as: Int.self]
    }
}

extension Migrator {
    func states() async throws -> [String: MigrationStatus.State] {
        Dictionary(uniqueKeysWithValues: try await status().map { ($0.version.digits, $0.state) })
    }
}

/// `pg_dump --schema-only` of the database, without the history table, comments, and the
/// random key of the `\restrict` lines newer pg_dumps write. pg_dump runs on a thread of
/// its own: waiting for it must not hold one of the few cooperative threads.
func schemaDump(_ url: String) async throws -> String {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            continuation.resume(with: Result { try runPgDump(url) })
        }
    }
}

private func runPgDump(_ url: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["pg_dump", "--schema-only", "--no-owner", "--exclude-table=stockroom_migrations", url]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw MigrationError(.database, "pg_dump failed") }
    return String(decoding: data, as: UTF8.self).split(separator: "\n").filter { !$0.hasPrefix("--") && !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }.joined(separator: "\n")
}

/// Real-world migration folders kept beside the checkout, in shared/corpus, rather than
/// copied into it.
enum MigrationCorpus {
    /// 269 golang-migrate pairs from openmeterio/openmeter (Apache 2.0), written by Atlas.
    static func openMeter() throws -> URL {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = [ProcessInfo.processInfo.environment["STOCKROOM_MIGRATION_CORPUS"]].compactMap { $0 }
            + [root.appendingPathComponent("../shared/corpus/openmeter").standardized.path,
               // Where the workplace keeps it, for clones made elsewhere (CI).
               "/work/shared/corpus/openmeter"]
        let found = candidates.first { FileManager.default.fileExists(atPath: $0) }
        return URL(fileURLWithPath: try #require(found, "the openmeter corpus is not in \(candidates); set STOCKROOM_MIGRATION_CORPUS"))
    }
}
