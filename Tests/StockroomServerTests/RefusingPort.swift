#if canImport(Glibc)
import Glibc
#endif

/// A loopback port that refuses connections and stays refused: bound, never listening.
/// A stopped listener's port does not do: another test running alongside may bind it a
/// moment later and answer whatever speaks to it (a webhook once got RESP back, "invalid
/// constant string", where the test expected a refusal).
final class RefusingPort: @unchecked Sendable {
    let port: Int
    private let descriptor: Int32

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RefusingPortError(call: "socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = in_addr_t(0x7F00_0001).bigEndian  // 127.0.0.1, port 0: the kernel picks
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard bound else {
            Glibc.close(fd)
            throw RefusingPortError(call: "bind")
        }
        descriptor = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { Glibc.close(descriptor) }
}

struct RefusingPortError: Error {
    let call: String
}
