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
/// `sever` shuts the socket down but never closes the descriptor — libpq owns it and
/// closes it in `PQfinish` — so the number cannot be reused by another socket under a
/// severing thread's feet. Around a reconnect (`PQreset` closes one socket and opens
/// another) the descriptor is published as -1.
final class ConnectionSocket: Sendable {
    private let descriptor = Atomic<Int32>(-1)
    private let broken = Atomic<Bool>(false)

    var isBroken: Bool { broken.load(ordering: .relaxed) }

    func markBroken() { broken.store(true, ordering: .relaxed) }

    /// After a successful reconnect.
    func reset(descriptor fd: Int32) {
        descriptor.store(fd, ordering: .sequentiallyConsistent)
        broken.store(false, ordering: .relaxed)
    }

    var currentDescriptor: Int32 { descriptor.load(ordering: .sequentiallyConsistent) }

    func publish(_ fd: Int32) { descriptor.store(fd, ordering: .sequentiallyConsistent) }

    /// Marks the connection broken and makes every blocking call on its socket return.
    func sever() {
        broken.store(true, ordering: .relaxed)
        let fd = descriptor.load(ordering: .sequentiallyConsistent)
        if fd >= 0 { _ = shutdown(fd, Int32(SHUT_RDWR)) }
    }
}
