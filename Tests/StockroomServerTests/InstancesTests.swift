import Foundation
import Logging
import Stockroom
@testable import StockroomServer
import Testing

/// Several `stockroom serve` instances over one database: what they must share.
@Suite struct InstancesTests {
    @Test func guessesSpreadOverInstancesAreSlowedAsIfOnOne() async throws {
        try await TestServer.with { server in
            let user = try await server.register()
            // A second instance on the same database.
            var configuration = ServerConfiguration()
            configuration.port = 0
            configuration.webhooks = nil
            var logger = Logger(label: "test.second")
            logger.logLevel = .warning
            let second = StockroomServer(stockroom: server.stockroom, configuration: configuration, logger: logger)
            let running = Task { try await second.run() }
            defer { running.cancel() }
            let secondPort = try await second.listeningPort()
            func guess(_ port: Int) async throws -> Duration {
                try await TestClient.connect(port: port) { (client: TestClient) async throws -> Duration in
                    let started = ContinuousClock.now
                    let reply = try await client.call("SESSION.LOGIN", #"{"email":"\#(user.email)","password":"not-the-password"}"#)
                    #expect(reply.errorCode == "WRONGPASS")
                    return ContinuousClock.now - started
                }
            }
            // Three free failures on the first instance; the fourth guess, on the second
            // instance, which saw none of them, waits as the first would have.
            for _ in 0..<3 { _ = try await guess(server.port) }
            #expect(try await guess(secondPort) >= .milliseconds(250))
            #expect(try await guess(server.port) >= .milliseconds(500), "and the count goes on on the first")
            // A success forgets the failures everywhere.
            try await TestClient.connect(port: secondPort) { (client: TestClient) async throws -> Void in
                _ = try await server.logIn(client, as: user)
            }
            let rows = try await server.stockroom.pool.query("SELECT count(*) FROM login_failures")[0][0, as: Int64.self]
            #expect(rows == 0)
        }
    }
}
