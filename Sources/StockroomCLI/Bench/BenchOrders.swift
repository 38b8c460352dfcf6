import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif
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
        let seconds = self.seconds
        // One thread per client, blocking on its socket, as pgbench's clients do: a load
        // generator that hops between an event loop and tasks per request takes CPU from
        // the service and the database it is measuring, on a machine of two cores.
        let (host, port, users, password, products) = (host, port, users, password, products)
        // At most 16 logins at a time: each takes a token of the service's per-address
        // login throttle until it succeeds (a burst of 60), and 64 at once would empty it.
        let logins = DispatchSemaphore(value: 16)
        let threads = (0..<clients).map { client in
            Thread {
                do {
                    let connection = try BlockingRESPConnection(host: host, port: port)
                    defer { connection.close() }
                    let user = client % users + 1
                    logins.wait()
                    let answer = Result { try connection.call(["AUTH", "bench-\(user)@example.com", password]) }
                    logins.signal()
                    let auth = try answer.get()
                    guard auth == "+OK" else { throw ValidationError("AUTH bench-\(user)@example.com failed: \(auth)") }
                    // The clock starts once every client is logged in, as pgbench's
                    // excludes connecting: 64 logins are 64 Argon2 hashes, seconds of
                    // CPU that would otherwise count against the orders.
                    let deadline = tally.startTogether(clients: clients, clock: clock, seconds: seconds)
                    var random = XorShift(seed: UInt64(client + 1))
                    var mine: [UInt64] = []
                    while clock.now < deadline {
                        let a = Int.random(in: 1...products, using: &random)
                        var b = Int.random(in: 1...products, using: &random)
                        if b == a { b = a % products + 1 }
                        let began = clock.now
                        let reply = try connection.call(["ORDER.PLACE", #"{"lines":[{"product_id":\#(a),"quantity":1},{"product_id":\#(b),"quantity":1}]}"#])
                        let elapsed = clock.now - began
                        if reply.hasPrefix("-") { tally.failures.add(1, ordering: .relaxed) } else {
                            mine.append(UInt64(elapsed.components.seconds) * 1_000_000_000 + UInt64(elapsed.components.attoseconds / 1_000_000_000))
                        }
                    }
                    tally.latencies.withLock { $0 += mine }
                } catch {
                    tally.errors.withLock { $0.append("\(error)") }
                    tally.abandon()
                }
                tally.finished.add(1, ordering: .relaxed)
            }
        }
        threads.forEach { $0.start() }
        while tally.finished.load(ordering: .relaxed) < clients { try await Task.sleep(for: .milliseconds(20)) }
        if let error = tally.errors.withLock({ $0.first }) { throw ValidationError(error) }
        guard let start = tally.start.withLock({ $0 }) else { throw ValidationError("no client started") }
        let elapsed = clock.now - start
        let summary = LatencySummary(tally.latencies.withLock { $0 }, seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        print("ORDER.PLACE clients=\(clients) \(summary.line) errors=\(tally.failures.load(ordering: .relaxed))")
    }
}

final class Tally: Sendable {
    let latencies = Mutex<[UInt64]>([])
    let failures = Atomic<Int>(0)
    let finished = Atomic<Int>(0)
    let errors = Mutex<[String]>([])
    let ready = Atomic<Int>(0)
    let start = Mutex<ContinuousClock.Instant?>(nil)

    /// Waits until `clients` clients are ready (or one gave up), then returns the common
    /// deadline; the common start is kept in `start`.
    func startTogether(clients: Int, clock: ContinuousClock, seconds: Int) -> ContinuousClock.Instant {
        ready.add(1, ordering: .relaxed)
        while ready.load(ordering: .relaxed) < clients { usleep(1000) }
        let start = self.start.withLock { start in
            if start == nil {
                start = clock.now
                // For scripts/cpu-split.py --from-line: what was spent so far is logins.
                // Written straight to the descriptor: print's buffer would hold it back.
                let line = "bench orders: \(clients) clients logged in, the clock starts\n"
                _ = line.withCString { write(STDOUT_FILENO, $0, strlen($0)) }
            }
            return start!
        }
        return start + .seconds(seconds)
    }

    /// A client that failed before it was ready must not keep the others waiting.
    func abandon() { ready.add(1_000_000, ordering: .relaxed) }
}

/// Just enough of a RESP client for the load generator, on a blocking socket: sends
/// arrays, reads one-line replies (+… or -…), which is all ORDER.PLACE and AUTH answer.
final class BlockingRESPConnection {
    private let fd: Int32
    private var pending: [UInt8] = []

    init(host: String, port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ValidationError("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            Glibc.close(fd)
            throw ValidationError("--host must be an IPv4 address, got \(host)")
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw ValidationError("connect to \(host):\(port): \(reason)")
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    func close() { Glibc.close(fd) }

    func call(_ arguments: [String]) throws -> String {
        var request = "*\(arguments.count)\r\n"
        for argument in arguments { request += "$\(argument.utf8.count)\r\n\(argument)\r\n" }
        var bytes = Array(request.utf8)
        var sent = 0
        while sent < bytes.count {
            let count = bytes.withUnsafeMutableBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { throw ValidationError("send: \(String(cString: strerror(errno)))") }
            sent += count
        }
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline].dropLast(), as: UTF8.self)  // without CR LF
                pending.removeSubrange(...newline)
                return line
            }
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress!, $0.count, 0) }
            guard count > 0 else { throw ValidationError(count == 0 ? "the server closed the connection" : "recv: \(String(cString: strerror(errno)))") }
            pending += chunk[..<count]
        }
    }
}
