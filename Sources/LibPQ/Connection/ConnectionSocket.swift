#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A connection's socket as seen from outside its thread: whether the connection is
/// broken, and a way to cut it off while a libpq call blocks on it.
///
/// It holds a duplicate of libpq's descriptor rather than libpq's own. libpq closes its
/// descriptor whenever it drops a connection, and the number is then free for the next
/// socket the process opens — another connection's, which a `shutdown` aimed at the old
/// number would cut instead. The duplicate's number stays ours until `release`, under
/// the same lock as `sever`. Being a second reference to the socket, it must be released
/// as soon as libpq is done with the socket, or the server would not see it close.
final class ConnectionSocket: Sendable {
    private let descriptor = Mutex<Int32>(-1)
    private let broken = Atomic<Bool>(false)
    private let port = Atomic<Int32>(0)
    private let severed = Atomic<Bool>(false)

    var isBroken: Bool { broken.load(ordering: .relaxed) }

    /// This end's TCP port (0 over a Unix socket, or unknown): with the backend's process
    /// id, it tells the server's `pg_stat_activity` row of this connection from another
    /// server's that has the same process id (after a failover, say).
    var localPort: Int32 { port.load(ordering: .relaxed) }

    /// Whether this end cut the connection (`sever`) since it was last adopted. A
    /// connection the server closed delivered, in order, all it sent before closing; a
    /// cut leaves the server running what it had received, unaware, and its answer lost.
    var wasSevered: Bool { severed.load(ordering: .relaxed) }

    func markBroken() { broken.store(true, ordering: .relaxed) }

    /// Watches libpq's socket `fd` from now on (after connecting or reconnecting).
    func adopt(_ fd: Int32) {
        let local = descriptor.withLock { descriptor -> Int32 in
            if descriptor >= 0 { close(descriptor) }
            descriptor = fd >= 0 ? dup(fd) : -1
            return descriptor >= 0 ? Self.port(of: descriptor) : 0
        }
        port.store(local, ordering: .relaxed)
        broken.store(false, ordering: .relaxed)
        severed.store(false, ordering: .relaxed)
    }

    private static func port(of fd: Int32) -> Int32 {
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let found = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard found == 0 else { return 0 }
        switch Int32(address.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int32(UInt16(bigEndian: $0.pointee.sin_port)) } }
        case AF_INET6:
            return withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int32(UInt16(bigEndian: $0.pointee.sin6_port)) } }
        default:
            return 0
        }
    }

    /// Lets go of the socket: libpq closed it, or is about to.
    func release() {
        descriptor.withLock { descriptor in
            if descriptor >= 0 { close(descriptor) }
            descriptor = -1
        }
    }

    var currentDescriptor: Int32 { descriptor.withLock { $0 } }

    /// Marks the connection broken and makes every blocking call on its socket return.
    func sever() {
        severed.store(true, ordering: .relaxed)
        broken.store(true, ordering: .relaxed)
        descriptor.withLock { descriptor in
            if descriptor >= 0 { _ = shutdown(descriptor, Int32(SHUT_RDWR)) }
        }
    }

    deinit { release() }
}
