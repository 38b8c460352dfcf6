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

    var isBroken: Bool { broken.load(ordering: .relaxed) }

    func markBroken() { broken.store(true, ordering: .relaxed) }

    /// Watches libpq's socket `fd` from now on (after connecting or reconnecting).
    func adopt(_ fd: Int32) {
        descriptor.withLock { descriptor in
            if descriptor >= 0 { close(descriptor) }
            descriptor = fd >= 0 ? dup(fd) : -1
        }
        broken.store(false, ordering: .relaxed)
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
        broken.store(true, ordering: .relaxed)
        descriptor.withLock { descriptor in
            if descriptor >= 0 { _ = shutdown(descriptor, Int32(SHUT_RDWR)) }
        }
    }

    deinit { release() }
}
