import Foundation
import Glibc
import NIOCore
import Synchronization
import Testing

/// A polite client that keeps pinging while an attack runs, from two connections (the
/// server has one event loop per core, two here, and connections take them in turn), so
/// a test can assert that the attack cost nobody else. Also samples the process's
/// resident memory: the server runs in the test process.
struct Bystander {
    struct Report: CustomStringConvertible {
        let pings: Int
        let max: Duration
        let p99: Duration
        let peakRSS: Int
        let baselineRSS: Int

        var description: String {
            "bystander: \(pings) PINGs, max \(max.milliseconds) ms, p99 \(p99.milliseconds) ms; RSS \(baselineRSS >> 20) MiB before, peak \(peakRSS >> 20) MiB"
        }
    }

    final class Stop: Sendable {
        let flag = Atomic<Bool>(false)
    }

    /// Runs `attack` while pinging; fails the test if the bystander saw a PING slower
    /// than `bound`. Generous, for a debug build sharing two cores with the whole suite;
    /// a release build's figures are in the printed report and scripts/attacks.py.
    static func watching<T>(
        _ server: TestServer, bound: Duration = .seconds(2), _ name: String,
        isolation actor: isolated (any Actor)? = #isolation,
        _ attack: () async throws -> T
    ) async throws -> T {
        let stop = Stop()
        let port = server.port
        let baseline = residentBytes()
        // On a thread of its own with blocking sockets, not on the cooperative pool: what
        // it measures is the server's event loops, not how busy this test process is.
        let pinger = Task { await BlockingPinger.run(port: port, stop: stop) }
        let result: T
        do {
            result = try await attack()
        } catch {
            stop.flag.store(true, ordering: .relaxed)
            _ = await pinger.value
            throw error
        }
        stop.flag.store(true, ordering: .relaxed)
        let (latencies, peak) = try await pinger.value.get()
        let sorted = latencies.sorted()
        let report = Report(
            pings: sorted.count, max: sorted.last ?? .zero,
            p99: sorted[Swift.min(sorted.count - 1, sorted.count * 99 / 100)], peakRSS: peak, baselineRSS: baseline)
        print("attack \(name): \(report)")
        #expect(report.max < bound, "a bystander's PING waited \(report.max) during \(name)")
        return result
    }

    /// VmRSS of this process, in bytes.
    static func residentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { return 0 }
        return kilobytes * 1024
    }
}

extension Duration {
    var milliseconds: Double {
        Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
    }
}

/// Two plain blocking TCP connections that PING in turn until told to stop.
private enum BlockingPinger {
    static func run(port: Int, stop: Bystander.Stop) async -> Result<(latencies: [Duration], peak: Int), any Error> {
        await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(returning: Result { try pingUntilStopped(port: port, stop: stop) })
            }
            thread.start()
        }
    }

    private static func pingUntilStopped(port: Int, stop: Bystander.Stop) throws -> (latencies: [Duration], peak: Int) {
        let sockets = try (0..<2).map { _ in try connect(port: port) }
        defer { for fd in sockets { close(fd) } }
        var latencies: [Duration] = []
        var peak = Bystander.residentBytes()
        // At least a few rounds, however quick the attack.
        while !stop.flag.load(ordering: .relaxed) || latencies.count < 20 {
            for fd in sockets {
                let start = ContinuousClock.now
                try ping(fd)
                latencies.append(.now - start)
            }
            peak = max(peak, Bystander.residentBytes())
            usleep(5_000)
        }
        return (latencies, peak)
    }

    private static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestClientError("socket: \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); throw TestClientError("connect: \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        // A server that never answers fails the test instead of hanging it.
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    private static func ping(_ fd: Int32) throws {
        let request = Array("PING\r\n".utf8)
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else { throw TestClientError("send: \(errno)") }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64)
        while !reply.ends(with: [0x0D, 0x0A]) {
            let count = recv(fd, &chunk, chunk.count, 0)
            guard count > 0 else { throw TestClientError("the bystander's PING got no answer (recv: \(count), errno \(errno))") }
            reply += chunk[0..<count]
        }
        guard reply == Array("+PONG\r\n".utf8) else { throw TestClientError("bystander got \(String(decoding: reply, as: UTF8.self))") }
    }
}

private extension Array where Element == UInt8 {
    func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}
