#if canImport(Glibc)
internal import Glibc
#elseif canImport(Darwin)
internal import Darwin
#endif

/// Turns off the handler OpenSSL registers to free its global state at process exit.
///
/// libpq uses OpenSSL for SCRAM authentication and TLS, on the connections' own threads.
/// A program that closes its pool and returns from `main` at once exits while those
/// threads are still ending, and OpenSSL's per-thread state is freed by their exit
/// while its `atexit` handler frees the global state under it: a corrupted heap at exit
/// (`malloc_consolidate(): unaligned fastbin chunk detected`, seen once in `make bench`
/// at the end of `stockroom bench point-query --pool 8`; openssl/openssl#6214). OpenSSL's
/// own answer is to leave the cleanup to the operating system, which frees the memory at
/// exit anyway.
///
/// Called before LibPQ's first connection: only the first initialization in a process
/// decides, so in a program that used OpenSSL before, this changes nothing. Looked up by
/// name, so that LibPQ does not link OpenSSL itself; absent (a libpq without OpenSSL),
/// nothing happens.
enum OpenSSLExitHandler {
    /// Whether OpenSSL took the request (`OPENSSL_init_crypto` returned 1).
    static let disabled: Bool = {
        #if canImport(Glibc)
        let everywhere: UnsafeMutableRawPointer? = nil  // RTLD_DEFAULT
        #else
        let everywhere = UnsafeMutableRawPointer(bitPattern: -2)  // RTLD_DEFAULT on Darwin
        #endif
        guard let symbol = dlsym(everywhere, "OPENSSL_init_crypto") else { return false }
        typealias InitCrypto = @convention(c) (UInt64, OpaquePointer?) -> Int32
        let noAtExit: UInt64 = 0x0008_0000  // OPENSSL_INIT_NO_ATEXIT, OpenSSL 3.0 and later
        return unsafeBitCast(symbol, to: InitCrypto.self)(noAtExit, nil) == 1
    }()
}
