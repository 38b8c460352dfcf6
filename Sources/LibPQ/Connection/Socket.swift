#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

enum Socket {
    /// Whether `fd` has data (or EOF) to read, without waiting.
    static func isReadable(_ fd: Int32) -> Bool {
        wait(fd, events: Int16(POLLIN), milliseconds: 0) != 0
    }

    /// Waits up to `milliseconds` (-1: forever) for `events` on `fd`; returns the events
    /// that happened, 0 on timeout.
    @discardableResult
    static func wait(_ fd: Int32, events: Int16, milliseconds: Int32) -> Int16 {
        var descriptor = pollfd(fd: fd, events: events, revents: 0)
        while true {
            let result = poll(&descriptor, 1, milliseconds)
            if result >= 0 { return result == 0 ? 0 : descriptor.revents }
            if errno != EINTR { return Int16(POLLERR) }
        }
    }
}

/// Calls `body` with a NULL-terminated array of C strings, as libpq's `…Params` calls take.
func withCStrings<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    return body(copies.map { $0.map { UnsafePointer($0) } } + [nil])
}

let POLLIN_VALUE = Int32(POLLIN)
let POLLOUT_VALUE = Int32(POLLOUT)
