import ArgumentParser
import Foundation
import LibPQ
import Synchronization

/// `stockroom bench point-query`: the same prepared point query in a loop through LibPQ,
/// on one connection and on a pool of 8, to measure the wrapper's own cost against plain
/// libpq (Benchmarks/c/point_query.c runs the identical loop in C).
struct BenchPointQuery: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "point-query", abstract: "A prepared point query in a loop through LibPQ.")

    @Option(name: .customLong("database-url")) var databaseURL: String
    @Option var queries = 20_000
    @Option var rows = 100_000
    @Option(help: "Tasks sharing a pool of this many connections; 1 for a single connection.") var pool = 1

    func run() async throws {
        let clock = ContinuousClock()
        let rows = Int32(self.rows)
        let connectionPool = PostgresPool(configuration: .init(connection: .init(databaseURL), maxConnections: pool))
        do {
            try await measure(connectionPool, clock: clock, rows: rows)
        } catch {
            // Closed before the error ends the process: exiting while other connections
            // are still inside libpq (connecting, say) crashes in OpenSSL's exit handler.
            await connectionPool.close()
            throw error
        }
    }

    private func measure(_ connectionPool: PostgresPool, clock: ContinuousClock, rows: Int32) async throws {
        // Warm up: open the connections and prepare the statement on each.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<pool { group.addTask { for _ in 0..<50 { _ = try await connectionPool.query("SELECT abalance FROM pgbench_accounts WHERE aid = \(Int32.random(in: 1...rows))") } } }
            try await group.waitForAll()
        }
        let start = clock.now
        let perTask = queries / pool
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<pool {
                group.addTask {
                    // The C loop draws with rand_r; the system generator would add a
                    // getrandom syscall per query to LibPQ's side alone.
                    var random = XorShift(seed: UInt64(task + 1))
                    try await connectionPool.withConnection { connection in
                        for _ in 0..<perTask {
                            let aid = Int32.random(in: 1...rows, using: &random)
                            let balance = try await connection.query("SELECT abalance FROM pgbench_accounts WHERE aid = \(aid)").first![0, as: Int32.self]
                            precondition(balance > Int32.min)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let total = perTask * pool
        await connectionPool.close()
        print("LibPQ connections=\(pool) queries=\(total) us_per_query=\(String(format: "%.2f", seconds * 1e6 / Double(total) * Double(pool))) per_second=\(Int(Double(total) / seconds))")
    }
}

/// A cheap deterministic generator for load loops (xorshift64*).
struct XorShift: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
}
