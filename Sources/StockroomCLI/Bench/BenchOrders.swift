import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// `stockroom bench orders`: C connections each placing orders of two random products
/// over the protocol, one at a time, for a while; throughput and latency percentiles.
/// redis-benchmark cannot drive this one: it fills `__rand_int__` with zero-padded digits,
/// which a JSON number cannot carry.
struct BenchOrders: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "orders", abstract: "Place orders of two random products over the protocol.")

    @Option var host = "127.0.0.1"
    @Option var port = 7379
    @Option var clients = 8
    @Option var seconds = 10
    @Option(help: "Products are chosen among ids 1...products.") var products = 100_000
    @Option(help: "Log in as bench-<n>@example.com, n in 1...users.") var users = 1000
    @Option var password = "bench password"

    func run() async throws {
        let tally = Tally()
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(seconds)
        let start = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<clients {
                group.addTask {
                    try await RESPConnection.with(host: host, port: port) { connection in
                    let user = client % users + 1
                    let auth = try await connection.call(["AUTH", "bench-\(user)@example.com", password])
                    guard auth == "+OK" else { throw ValidationError("AUTH bench-\(user)@example.com failed: \(auth)") }
                    var mine: [UInt64] = []
                    while clock.now < deadline {
                        let a = Int.random(in: 1...products)
                        var b = Int.random(in: 1...products)
                        if b == a { b = a % products + 1 }
                        let began = clock.now
                        let reply = try await connection.call(["ORDER.PLACE", #"{"lines":[{"product_id":\#(a),"quantity":1},{"product_id":\#(b),"quantity":1}]}"#])
                        let elapsed = clock.now - began
                        if reply.hasPrefix("-") { tally.failures.add(1, ordering: .relaxed) } else {
                            mine.append(UInt64(elapsed.components.seconds) * 1_000_000_000 + UInt64(elapsed.components.attoseconds / 1_000_000_000))
                        }
                    }
                    tally.latencies.withLock { $0 += mine }
                    }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = clock.now - start
        let summary = LatencySummary(tally.latencies.withLock { $0 }, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        print("ORDER.PLACE clients=\(clients) \(summary.line) errors=\(tally.failures.load(ordering: .relaxed))")
    }
}

final class Tally: Sendable {
    let latencies = Mutex<[UInt64]>([])
    let failures = Atomic<Int>(0)
}

/// Just enough of a RESP client for the load generators: sends arrays, reads one-line
/// replies (+… or -…), which is all ORDER.PLACE and AUTH answer.
final class RESPConnection {
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var buffer = ByteBuffer()

    private init(inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.inbound = inbound
        self.outbound = outbound
    }

    static func with<T>(host: String, port: Int, isolation actor: isolated (any Actor)? = #isolation, _ body: (RESPConnection) async throws -> T) async throws -> T {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await body(RESPConnection(inbound: inbound.makeAsyncIterator(), outbound: outbound))
        }
    }

    func call(_ arguments: [String]) async throws -> String {
        var request = ByteBuffer(string: "*\(arguments.count)\r\n")
        for argument in arguments { request.writeString("$\(argument.utf8.count)\r\n\(argument)\r\n") }
        try await outbound.write(request)
        while true {
            let view = buffer.readableBytesView
            if let newline = view.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer.readString(length: newline - view.startIndex + 1)!
                return String(line.dropLast())  // "\r\n" is one Character
            }
            guard var more = try await inbound.next() else { throw ValidationError("the server closed the connection") }
            buffer.writeBuffer(&more)
        }
    }
}
