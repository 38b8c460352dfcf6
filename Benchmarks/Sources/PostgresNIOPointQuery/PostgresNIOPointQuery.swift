import Foundation
import Logging
import NIOPosix
import PostgresNIO

/// The point query of `stockroom bench point-query` and Benchmarks/c/point_query.c,
/// through PostgresNIO: a named prepared statement, on one connection or on a pool.
///
///     PostgresNIOPointQuery HOST PORT USER PASSWORD DATABASE QUERIES ROWS CONNECTIONS
struct PointQuery: PostgresPreparedStatement {
    static let sql = "SELECT abalance FROM pgbench_accounts WHERE aid = $1"
    typealias Row = Int32

    var aid: Int32

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(aid)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Int32 {
        try row.decode(Int32.self)
    }
}

@main
struct PostgresNIOPointQuery {
    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count == 9, let port = Int(arguments[2]), let queries = Int(arguments[6]), let rows = Int32(arguments[7]), let connections = Int(arguments[8]) else {
            FileHandle.standardError.write(Data("usage: PostgresNIOPointQuery HOST PORT USER PASSWORD DATABASE QUERIES ROWS CONNECTIONS\n".utf8))
            exit(64)
        }
        let logger = Logger(label: "bench")
        var configuration = PostgresClient.Configuration(host: arguments[1], port: port, username: arguments[3], password: arguments[4], database: arguments[5], tls: .disable)
        configuration.options.minimumConnections = connections
        configuration.options.maximumConnections = connections
        let client = PostgresClient(configuration: configuration)
        let perTask = queries / connections
        let clock = ContinuousClock()
        let elapsed = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            // Warm up: open the connections and prepare the statement on each.
            try await withThrowingTaskGroup(of: Void.self) { warm in
                for _ in 0..<connections {
                    warm.addTask { for _ in 0..<50 { for try await _ in try await client.execute(PointQuery(aid: .random(in: 1...rows)), logger: logger) {} } }
                }
                try await warm.waitForAll()
            }
            let start = clock.now
            try await withThrowingTaskGroup(of: Void.self) { work in
                for _ in 0..<connections {
                    work.addTask {
                        try await client.withConnection { connection in
                            for _ in 0..<perTask {
                                var found = 0
                                for try await balance in try await connection.execute(PointQuery(aid: .random(in: 1...rows)), logger: logger) {
                                    precondition(balance > Int32.min)
                                    found += 1
                                }
                                precondition(found == 1)
                            }
                        }
                    }
                }
                try await work.waitForAll()
            }
            let elapsed = clock.now - start
            group.cancelAll()
            return elapsed
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let total = perTask * connections
        print("PostgresNIO connections=\(connections) queries=\(total) us_per_query=\(String(format: "%.2f", seconds * 1e6 / Double(total) * Double(connections))) per_second=\(Int(Double(total) / seconds))")
    }
}
