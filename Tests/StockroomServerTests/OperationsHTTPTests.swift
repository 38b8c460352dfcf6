import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import LibPQ
import Metrics
@testable import Migrations
import Prometheus
@testable import StockroomServer
import Testing

/// The operations listener over real HTTP. Each test records its metrics into a registry
/// of its own (a task-local factory, bound before the server is made), so the suite runs
/// in parallel with everything else and asserts exact values.
@Suite("Operations HTTP: /healthz, /readyz, /metrics")
struct OperationsHTTPTests {
    @Test func healthzAnswersAndOtherPathsAndMethodsAreRefused() async throws {
        var listened: Int?
        try await Self.withOperations { server, _ in
            let port = try #require(server.operationsPort)
            listened = port
            #expect(try await Self.request(port, "/healthz") == HTTPAnswer(status: 200, body: "ok\n"))
            #expect(try await Self.request(port, "/nothing-here").status == 404)
            #expect(try await Self.request(port, "/healthz", method: "POST") == HTTPAnswer(status: 405, body: "method not allowed\n"))
            #expect(try await Self.request(port, "/metrics", method: "DELETE").status == 405)
            #expect(try await Self.request(port, "/readyz", method: "PUT").status == 405)
        }
        // The group's graceful shutdown (SIGTERM in `serve`) stopped the listener too.
        let port = try #require(listened)
        await #expect(throws: (any Error).self) { try await Self.request(port, "/healthz") }
    }

    @Test func theReasonNamesTheFirstVersionBehindAndCountsTheRest() {
        func status(_ version: String, _ state: MigrationStatus.State) -> MigrationStatus {
            MigrationStatus(version: MigrationVersion(version)!, title: "t\(version)", state: state)
        }
        #expect(Readiness.reason([status("1", .applied), status("2", .newer)]) == nil)
        #expect(Readiness.reason([status("1", .applied), status("2", .failed), status("3", .pending)]) == "schema not current: migration 2 (t2) failed part-way (and 1 more)")
        #expect(Readiness.reason([status("1", .modified)]) == "schema not current: migration 1 (t1) changed since it was applied")
    }

    @Test func readyOnAMigratedDatabaseUntilShutdownBegins() async throws {
        try await Self.withOperations { server, _ in
            let port = try #require(server.operationsPort)
            #expect(try await Self.request(port, "/readyz") == HTTPAnswer(status: 200, body: "ready\n"))
            // What SIGTERM does first: the TCP service drains, and a load balancer
            // asking meanwhile is told to send clients elsewhere.
            server.server.registry.beginShutdown()
            #expect(try await Self.request(port, "/readyz") == HTTPAnswer(status: 503, body: "shutting down\n"))
            #expect(try await Self.request(port, "/healthz").status == 200)
        }
    }

    @Test func notReadyWhenTheDatabaseIsUnreachableAndTheReasonHidesTheURL() async throws {
        // Port 1: nothing listens there, so connecting is refused at once.
        try await Self.withOperations(database: { $0.connection = .init("postgresql://stockroom:hunter2secret@127.0.0.1:1/nowhere") }) { server, _ in
            let port = try #require(server.operationsPort)
            let started = ContinuousClock.now
            let answer = try await Self.request(port, "/readyz")
            #expect(answer == HTTPAnswer(status: 503, body: "database unreachable\n"))
            #expect(!answer.body.contains("hunter2") && !answer.body.contains("nowhere"))
            #expect(ContinuousClock.now - started < .seconds(5))
            // Liveness never asks the database.
            #expect(try await Self.request(port, "/healthz").status == 200)
        }
    }

    @Test func notReadyWhileAMigrationFileOfTheFolderIsNotApplied() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("readyz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let shipped = TestServer.root.appendingPathComponent("migrations")
        for name in try FileManager.default.contentsOfDirectory(atPath: shipped.path) {
            try FileManager.default.copyItem(at: shipped.appendingPathComponent(name), to: folder.appendingPathComponent(name))
        }
        try "CREATE TABLE later_things (id int8 PRIMARY KEY);\n".write(to: folder.appendingPathComponent("99999_later_things.up.sql"), atomically: true, encoding: .utf8)

        var configuration = OperationsServer.Configuration()
        configuration.schemaCheckInterval = .seconds(3)
        try await Self.withOperations(migrations: folder, configuration: configuration) { server, _ in
            let port = try #require(server.operationsPort)
            let checked = ContinuousClock.now
            #expect(try await Self.request(port, "/readyz") == HTTPAnswer(status: 503, body: "schema not current: migration 99999 (later_things) is not applied\n"))

            try await Migrator(databaseURL: server.databaseURL, configuration: .init(directory: folder)).up()
            let cached = try await Self.request(port, "/readyz")
            // The answer is kept for the interval: probes do not each read the history.
            if ContinuousClock.now - checked < .milliseconds(2500) { #expect(cached.status == 503) }
            let ready = try await Self.eventually { try await Self.request(port, "/readyz").status == 200 }
            #expect(ready)
        }
    }

    @Test func metricsShowCommandsPoolSubscribersAndLookups() async throws {
        try await Self.withOperations { server, _ in
            let port = try #require(server.operationsPort)
            let product = try await server.product(sku: "OPS-\(UUID().uuidString.prefix(8))")
            let user = try await server.register()
            try await server.client { client in
                #expect(try await client.call("PING") == .simple("PONG"))
                #expect(try await client.call("PING") == .simple("PONG"))
                _ = try await client.call("PRODUCT.GET", String(product))
            }
            let text = try await Self.request(port, "/metrics").body
            #expect(Self.value(text, #"stockroom_commands{command="ping",outcome="OK"}"#) == 2)
            #expect(Self.value(text, #"stockroom_command_duration_count{command="ping"}"#) == 2)
            #expect(Self.value(text, "stockroom_pool_max") == 8)
            #expect(Self.value(text, "stockroom_pool_waiting") == 0)
            #expect(Self.value(text, "stockroom_subscribers") == 0)
            #expect(Self.value(text, "stockroom_lookup_lookups") == 1)
            #expect(Self.value(text, "stockroom_lookup_batches") == 1)

            // A connection held here shows as leased.
            try await server.stockroom.pool.withConnection { connection in
                try await connection.query("SELECT 1")
                let held = try await Self.request(port, "/metrics").body
                #expect((Self.value(held, "stockroom_pool_leased") ?? 0) >= 1)
                #expect((Self.value(held, "stockroom_pool_open") ?? 0) >= 1)
            }

            try await server.client { listener in
                try await server.logIn(listener, as: user)
                try await listener.send(TestClient.resp(["SUBSCRIBE", "order.placed"]))
                let subscribed = try await Self.eventually {
                    Self.value(try await Self.request(port, "/metrics").body, "stockroom_subscribers") == 1
                }
                #expect(subscribed)
            }
        }
    }

    @Test func metricsShowTheOutboxLagWhileNumberingIsHeldUp() async throws {
        var configuration = OperationsServer.Configuration()
        configuration.outboxSampleInterval = .milliseconds(100)
        try await Self.withOperations(configuration: configuration) { server, _ in
            let port = try #require(server.operationsPort)
            let settled = try await Self.eventually { Self.value(try await Self.request(port, "/metrics").body, "stockroom_outbox_pending") == 0 }
            #expect(settled)

            // Numbering takes the counter's row lock: held here, events wait unnumbered.
            let blocker = try await PostgresConnection.connect(.init(server.databaseURL))
            try await blocker.query("BEGIN")
            try await blocker.query("SELECT last_id FROM event_counter FOR UPDATE")
            // Stock down past the threshold: the trigger writes a product.low_stock event.
            let product = try await server.product(stock: 10)
            try await server.stockroom.pool.query("UPDATE products SET stock = 0 WHERE id = \(Int64(product))")
            try await Task.sleep(for: .milliseconds(300))
            let lagging = try await Self.eventually {
                let text = try await Self.request(port, "/metrics").body
                return (Self.value(text, "stockroom_outbox_pending") ?? 0) >= 1 && (Self.value(text, "stockroom_outbox_oldest_seconds") ?? 0) >= 0.2
            }
            #expect(lagging)
            try await blocker.query("COMMIT")
            await blocker.close()

            let caughtUp = try await Self.eventually {
                let text = try await Self.request(port, "/metrics").body
                return Self.value(text, "stockroom_outbox_pending") == 0 && Self.value(text, "stockroom_outbox_oldest_seconds") == 0
            }
            #expect(caughtUp)
        }
    }

    // MARK: - Helpers

    struct HTTPAnswer: Equatable {
        var status: Int
        var body: String
    }

    /// A server with its operations listener, its metrics recorded into a registry of
    /// this test's.
    static func withOperations(
        migrations: URL = TestServer.root.appendingPathComponent("migrations"),
        configuration: OperationsServer.Configuration = OperationsServer.Configuration(),
        database: (inout PostgresPool.Configuration) -> Void = { _ in },
        _ body: (TestServer, PrometheusCollectorRegistry) async throws -> Void
    ) async throws {
        let registry = PrometheusCollectorRegistry()
        try await withMetricsFactory(PrometheusMetricsFactory(registry: registry)) {
            let operations = TestServer.Operations(registry: registry, migrations: migrations, configuration: configuration)
            try await TestServer.with(database: database, operations: operations) { server in
                try await body(server, registry)
            }
        }
    }

    static func request(_ port: Int, _ path: String, method: String = "GET") async throws -> HTTPAnswer {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        request.timeoutInterval = 10
        let (data, response) = try await URLSession.shared.data(for: request)
        return HTTPAnswer(status: (response as! HTTPURLResponse).statusCode, body: String(decoding: data, as: UTF8.self))
    }

    /// The value of the sample `series` (a name, with its labels if it has any).
    static func value(_ exposition: String, _ series: String) -> Double? {
        for line in exposition.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    /// Whether `condition` holds within 10 s (room for a loaded machine), asked every 50 ms.
    static func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }
}
