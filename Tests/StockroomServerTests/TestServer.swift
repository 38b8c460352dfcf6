import Foundation
import LibPQ
import Logging
import Migrations
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import Stockroom
import StockroomDelivery
import StockroomServer

/// A server on a free port over a database of its own (migrated from migrations/), for
/// one test. A database rather than a schema, so a test can make it unreachable.
struct TestServer: Sendable {
    static let url = StockroomDatabase.urlFromEnvironment(ProcessInfo.processInfo.environment)
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    let port: Int
    let server: StockroomServer
    let stockroom: Stockroom
    let databaseName: String
    let databaseURL: String
    let group: ServiceGroup
    /// The operations HTTP listener's port, when the test asked for one.
    var operationsPort: Int?

    /// An operations HTTP listener on a free port beside the server (`OperationsServer`).
    struct Operations: Sendable {
        /// What /metrics shows; the test binds a factory recording into it.
        var registry: PrometheusCollectorRegistry
        /// The migrations folder /readyz compares with; the repository's by default.
        var migrations: URL = TestServer.root.appendingPathComponent("migrations")
        var configuration = OperationsServer.Configuration()
    }

    static func with<T>(
        eventLoops: MultiThreadedEventLoopGroup = .singleton,
        configure: (inout ServerConfiguration) -> Void = { _ in },
        database: (inout PostgresPool.Configuration) -> Void = { _ in },
        poolSize: Int = 8,
        operations: Operations? = nil,
        jobHandlers: (Stockroom) throws -> [any JobHandler] = { _ in [] },
        isolation actor: isolated (any Actor)? = #isolation,
        _ body: (TestServer) async throws -> T
    ) async throws -> T {
        let name = "srv_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let admin = try await PostgresConnection.connect(url)
        try await admin.query("CREATE DATABASE \(identifier: name)")
        let databaseURL = Self.url(database: name)
        try await Migrator(databaseURL: databaseURL, configuration: .init(directory: root.appendingPathComponent("migrations"))).up()

        var logger = Logger(label: "test.server")
        logger.logLevel = .warning
        var poolConfiguration = PostgresPool.Configuration(connection: .init(databaseURL), maxConnections: poolSize, acquireTimeout: .seconds(5))
        database(&poolConfiguration)
        let pool = PostgresPool(configuration: poolConfiguration, logger: logger)
        let stockroom = Stockroom(pool: pool, passwordHasher: PasswordHasher(operations: 1, memoryBytes: 1 << 20))
        var configuration = ServerConfiguration()
        configuration.port = 0
        // Webhook delivery costs each server a listening connection and a share of its
        // pool; the tests that deliver turn it on (WebhookTests).
        configuration.webhooks = nil
        configure(&configuration)
        configuration.jobHandlers += try jobHandlers(stockroom)
        let server = StockroomServer(stockroom: stockroom, configuration: configuration, group: eventLoops, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: server)]
        var operationsServer: OperationsServer?
        if let operations {
            var configuration = operations.configuration
            configuration.port = 0
            let migrator = Migrator(databaseURL: databaseURL, configuration: .init(directory: operations.migrations), logger: logger)
            let listener = OperationsServer(server: server, migrator: migrator, registry: operations.registry, configuration: configuration, logger: logger)
            operationsServer = listener
            services.insert(.init(service: listener), at: 0)  // as `stockroom serve` orders them
        }
        let group = ServiceGroup(configuration: .init(services: services, logger: logger))
        let running = Task { try await group.run() }
        var harness = TestServer(port: try await server.listeningPort(), server: server, stockroom: stockroom, databaseName: name, databaseURL: databaseURL, group: group)
        harness.operationsPort = try await operationsServer?.listeningPort()
        func cleanUp() async {
            await group.triggerGracefulShutdown()
            _ = await running.result
            await pool.close()
            _ = try? await admin.query("ALTER DATABASE \(identifier: name) WITH ALLOW_CONNECTIONS true")
            _ = try? await admin.query("DROP DATABASE \(identifier: name) WITH (FORCE)")
            await admin.close()
        }
        do {
            let value = try await body(harness)
            await cleanUp()
            return value
        } catch {
            await cleanUp()
            throw error
        }
    }

    static func url(database: String) -> String {
        let (base, query) = url.firstIndex(of: "?").map { (String(url[..<$0]), String(url[$0...])) } ?? (url, "")
        return base[..<base.lastIndex(of: "/")!] + "/" + database + query
    }

    /// A connected client for `body`; closed afterwards.
    func client<T>(isolation actor: isolated (any Actor)? = #isolation, _ body: (TestClient) async throws -> T) async throws -> T {
        try await TestClient.connect(port: port, body)
    }

    /// A registered user, logged in on `client`.
    @discardableResult
    func logIn(_ client: TestClient, admin: Bool = false) async throws -> (id: Int, email: String, token: String) {
        try await logIn(client, as: register(admin: admin))
    }

    /// A new user with the password "password123". Registering hashes the password, which
    /// takes seconds on a loaded machine: a test with a short idle timeout registers before
    /// it connects.
    func register(admin: Bool = false) async throws -> (id: Int, email: String) {
        let email = "u\(UUID().uuidString.prefix(8).lowercased())@example.com"
        let user = try await stockroom.accounts.register(email: email, name: "Test User", password: "password123", role: admin ? .admin : .customer)
        return (Int(user.id), email)
    }

    /// `user` (from `register`), logged in on `client`.
    @discardableResult
    func logIn(_ client: TestClient, as user: (id: Int, email: String)) async throws -> (id: Int, email: String, token: String) {
        let reply = try await client.call("SESSION.LOGIN", #"{"email":"\#(user.email)","password":"password123"}"#)
        let token = try reply.json()["token"] as! String
        return (user.id, user.email, token)
    }

    /// Marks order `id` paid by hand (ORDER.PAY), as an admin on a connection of its own:
    /// customers pay through the processor.
    @discardableResult
    func payByHand(_ id: Int) async throws -> TestReply {
        let admin = try await register(admin: true)
        return try await client { client in
            try await logIn(client, as: admin)
            return try await client.call("ORDER.PAY", "\(id)")
        }
    }

    /// A product created through the service by an admin connection.
    func product(sku: String = "SKU-\(UUID().uuidString.prefix(8))", price: Int = 1250, stock: Int = 10) async throws -> Int {
        let admin = try await register(admin: true)
        return try await client { client in
            try await logIn(client, as: admin)
            let reply = try await client.call("PRODUCT.CREATE", #"{"sku":"\#(sku)","name":"Mug \#(sku)","description":"A mug","price_cents":\#(price),"currency":"EUR","stock":\#(stock)}"#)
            return try reply.json()["id"] as! Int
        }
    }
}
