import Foundation
#if canImport(Glibc)
import Glibc
#endif
import LibPQ
import Logging
import Migrations
import ServiceLifecycle
import Stockroom
@testable import StockroomServer
import Testing

/// Reads from a real streaming standby (scripts/standby-pair.sh), with its replay paused
/// to make it lag for as long as the test needs: a client reads its own writes, one that
/// did not write reads the standby, and reads go back to the standby once it caught up.
@Suite struct StandbyReadTests {
    struct Pair {
        let folder: String
        let primaryPort: Int
        let standbyPort: Int
        var primaryURL: String { "postgres://stockroom:stockroom@127.0.0.1:\(primaryPort)/stockroom" }
        var standbyURL: String { "postgres://stockroom:stockroom@127.0.0.1:\(standbyPort)/stockroom" }
        /// The superuser, through the socket: pausing replay needs it.
        var standbyAdminURL: String { "postgresql:///postgres?host=\(folder)&port=\(standbyPort)&user=postgres" }
    }

    /// Runs scripts/standby-pair.sh and returns what it printed.
    ///
    /// Not with Foundation's `Process`: in this test its termination handler never ran
    /// (the script stayed a zombie, unreaped), and `waitUntilExit` would block a thread of
    /// the cooperative pool anyway. posix_spawn, then `waitpid` with WNOHANG, polled. The
    /// output goes to a file, not a pipe: the servers the script starts would inherit a
    /// pipe and keep it open.
    static func script(_ arguments: [String]) async throws -> String {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("standby-pair-\(UUID().uuidString).out")
        defer { try? FileManager.default.removeItem(at: output) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, output.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let path = TestServer.root.appendingPathComponent("scripts/standby-pair.sh").path
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, nil, argv, environ)
        try #require(spawned == 0, "could not start scripts/standby-pair.sh: \(spawned)")
        var status: Int32 = 0
        let deadline = ContinuousClock.now + .seconds(120)
        while waitpid(pid, &status, WNOHANG) == 0 {
            try #require(ContinuousClock.now < deadline, "scripts/standby-pair.sh \(arguments.joined(separator: " ")) did not finish within 120 s")
            try await Task.sleep(for: .milliseconds(50))
        }
        try #require(status == 0, "scripts/standby-pair.sh \(arguments.joined(separator: " ")) failed (status \(status))")
        return (try String(contentsOf: output, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func withPair(_ body: (Pair) async throws -> Void) async throws {
        let fields = try await script(["start"]).split(separator: " ").map(String.init)
        try #require(fields.count == 3)
        let pair = Pair(folder: fields[0], primaryPort: Int(fields[1])!, standbyPort: Int(fields[2])!)
        do {
            try await body(pair)
        } catch {
            _ = try? await script(["stop", pair.folder])
            throw error
        }
        _ = try await script(["stop", pair.folder])
    }

    /// Waits up to 10 s for `condition`.
    static func eventually(_ what: String, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("not within 10 s: \(what)")
    }

    static func stock(_ client: TestClient, _ id: Int) async throws -> Int? {
        try await client.call("PRODUCT.GET", "\(id)").json()["stock"] as? Int
    }

    /// Whether the standby has replayed product `id`.
    static func standbyHas(_ pair: Pair, _ id: Int64) async throws -> Bool {
        let connection = try await PostgresConnection.connect(.init(pair.standbyURL))
        defer { Task { await connection.close() } }
        return try await connection.query("SELECT 1 FROM products WHERE id = \(id)").count == 1
    }

    @Test func aClientReadsItsOwnWritesWhileTheStandbyLagsAndOthersReadTheStandby() async throws {
        try await Self.withPair { pair in
            try await Migrator(databaseURL: pair.primaryURL, configuration: .init(directory: TestServer.root.appendingPathComponent("migrations"))).up()
            var logger = Logger(label: "test.standby")
            logger.logLevel = .warning
            let pool = PostgresPool(configuration: .init(connection: .init(pair.primaryURL), maxConnections: 4), logger: logger)
            let readPool = PostgresPool(configuration: .init(connection: .init(pair.standbyURL), maxConnections: 4), logger: logger)
            let stockroom = Stockroom(pool: pool, passwordHasher: PasswordHasher(operations: 1, memoryBytes: 1 << 20))
            var configuration = ServerConfiguration()
            configuration.port = 0
            configuration.webhooks = nil
            let server = StockroomServer(stockroom: stockroom, readPool: readPool, configuration: configuration, logger: logger)
            let group = ServiceGroup(configuration: .init(services: [.init(service: server)], logger: logger))
            let running = Task { try await group.run() }
            defer { Task { await group.triggerGracefulShutdown(); _ = await running.result; await pool.close(); await readPool.close() } }
            let port = try await server.listeningPort()

            let admin = try await stockroom.accounts.register(email: "admin@example.com", name: "Admin", password: "password123", role: .admin)
            let product = try await stockroom.products.create(NewProduct(sku: "MUG-1", name: "Mug", description: nil, priceCents: 1000, currency: "EUR", stock: 10), as: Principal(admin))
            let id = Int(product.id)
            let standbyAdmin = try await PostgresConnection.connect(.init(pair.standbyAdminURL))
            defer { Task { await standbyAdmin.close() } }

            try await TestClient.connect(port: port) { (writer: TestClient) async throws -> Void in
                try await TestClient.connect(port: port) { (reader: TestClient) async throws -> Void in
                    _ = try await writer.call("SESSION.LOGIN", #"{"email":"admin@example.com","password":"password123"}"#)
                    // Until the standby has replayed the migrations, its lookups fail and fall
                    // back to the primary; then it may not have the product yet (the reader
                    // never wrote, so it reads what the standby has).
                    try await Self.eventually("the product on the standby") { (try? await Self.standbyHas(pair, product.id)) == true }
                    #expect(try await Self.stock(reader, id) == 10)

                    // The standby stops replaying: it lags as long as the test wants.
                    try await standbyAdmin.query("SELECT pg_wal_replay_pause()")
                    #expect(try await writer.call("PRODUCT.RESTOCK", "\(id)", "5").json()["stock"] as? Int == 15)
                    // The writer reads its write (from the primary), by id, by sku, in lists.
                    #expect(try await Self.stock(writer, id) == 15)
                    #expect(try await writer.call("PRODUCT.GET", "SKU", "MUG-1").json()["stock"] as? Int == 15)
                    let listed = try await writer.call("PRODUCT.LIST").json()["items"] as? [[String: Any]]
                    #expect(listed?.first?["stock"] as? Int == 15)
                    // The reader never wrote: it reads the standby, which has not replayed it.
                    #expect(try await Self.stock(reader, id) == 10)
                    let searched = try await reader.call("PRODUCT.SEARCH", "mug").json()["items"] as? [[String: Any]]
                    #expect(searched?.first?["stock"] as? Int == 10)

                    // Replay resumes: the reader catches up, and the writer's reads go back to
                    // the standby — shown by a write from elsewhere that the paused standby
                    // does not have: the writer, who did not make it, reads the standby.
                    try await standbyAdmin.query("SELECT pg_wal_replay_resume()")
                    try await Self.eventually("the standby caught up") { try await Self.stock(reader, id) == 15 }
                    try await Self.eventually("the writer's fence passed") { server.dispatcher.replicas!.standbysMayServe(lastWrite: ContinuousClock.now - .milliseconds(1)) }
                    try await standbyAdmin.query("SELECT pg_wal_replay_pause()")
                    _ = try await stockroom.products.restock(id: product.id, quantity: 1, as: Principal(admin))
                    #expect(try await Self.stock(writer, id) == 15, "back on the standby")
                    try await standbyAdmin.query("SELECT pg_wal_replay_resume()")
                }
            }
        }
    }
}
