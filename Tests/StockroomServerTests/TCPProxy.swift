import Foundation
import Glibc
import Synchronization

/// A TCP proxy on 127.0.0.1 in front of PostgreSQL, for faults a real network has: it can
/// black-hole traffic (connections stay open, nothing moves either way, as in a
/// partition) and cut every connection at once (as a dropped link does). Blocking
/// sockets, a thread per direction: it carries a test's few connections.
final class TCPProxy: Sendable {
    let port: Int
    private let listener: Int32
    private let targetPort: Int
    private let state = Mutex(State())

    private struct State {
        var blackHole = false
        var sockets: [Int32] = []
        var stopped = false
    }

    /// A proxy to the host and port of `url` (a `postgres://` URL on 127.0.0.1).
    convenience init(inFrontOf url: String) throws {
        guard let match = url.firstMatch(of: /@[^\/:]+:(\d+)\//), let port = Int(match.1) else {
            throw TestClientError("no port in the database URL")
        }
        try self.init(targetPort: port)
    }

    init(targetPort: Int) throws {
        self.targetPort = targetPort
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var address = sockaddr_in.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 64) == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    /// `url` with its port replaced by the proxy's.
    func url(replacing url: String) -> String {
        url.replacingOccurrences(of: ":\(targetPort)/", with: ":\(port)/")
    }

    /// Stops moving bytes, in both directions, on every connection, old and new.
    func setBlackHole(_ on: Bool) {
        state.withLock { $0.blackHole = on }
    }

    /// Closes every connection now; new ones are still accepted.
    ///
    /// Under the lock, and only on descriptors still open: a number the pumps closed may
    /// already be another socket of the process (a libpq connection of a test running
    /// beside this one), which a late `shutdown` would cut instead.
    func cutAll() {
        state.withLock { state in
            for fd in state.sockets { shutdown(fd, Int32(SHUT_RDWR)) }
        }
    }

    func stop() {
        state.withLock { $0.stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
        cutAll()
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if state.withLock({ $0.stopped }) { close(listener); return }
                continue
            }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in.loopback(port: UInt16(targetPort))
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                close(client)
                close(server)
                continue
            }
            state.withLock { $0.sockets += [client, server] }
            let done = Atomic<Int>(0)
            let pairs = [(client, server), (server, client)]
            for (from, to) in pairs {
                Thread { [self] in
                    pump(from: from, to: to)
                    shutdown(from, Int32(SHUT_RDWR))
                    shutdown(to, Int32(SHUT_RDWR))
                    // The second pump to finish closes both, forgetting them first.
                    if done.add(1, ordering: .relaxed).newValue == 2 {
                        state.withLock { state in
                            state.sockets.removeAll { $0 == from || $0 == to }
                            close(from)
                            close(to)
                        }
                    }
                }.start()
            }
        }
    }

    private func pump(from: Int32, to: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            var descriptor = pollfd(fd: from, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 20)
            if ready < 0 && errno != EINTR { return }
            if ready <= 0 { continue }
            // A black hole reads nothing: the bytes wait in the kernel's buffers, as they
            // would behind a dead link. Nor does a close get through: the other side
            // learns of it only once the link is back, as in a real partition.
            let (blackHole, stopped) = state.withLock { ($0.blackHole, $0.stopped) }
            if stopped { return }
            if blackHole {
                usleep(20_000)
                continue
            }
            let count = read(from, &buffer, buffer.count)
            if count <= 0 { return }
            var sent = 0
            while sent < count {
                let written = buffer[sent..<count].withUnsafeBytes { write(to, $0.baseAddress, $0.count) }
                if written <= 0 { return }
                sent += written
            }
        }
    }
}

extension sockaddr_in {
    static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}
