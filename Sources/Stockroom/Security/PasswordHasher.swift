internal import CSodium
internal import Dispatch
import Synchronization

/// Argon2id password hashing through libsodium. The parameters are stored in each hash
/// (`$argon2id$v=19$m=…,t=…,p=…$…`), so raising them later only affects new hashes, and
/// old ones are upgraded at the next successful login.
///
/// Hashing is deliberately slow and memory-hungry, so it runs on Dispatch threads — at
/// most `concurrency` at once, bounding memory — never on Swift's cooperative pool.
public struct PasswordHasher: Sendable {
    public var operations: Int
    public var memoryBytes: Int

    /// libsodium's "interactive" level: 2 passes over 64 MiB, tens of milliseconds.
    public static let interactive = PasswordHasher(
        operations: Int(crypto_pwhash_OPSLIMIT_INTERACTIVE),
        memoryBytes: Int(crypto_pwhash_MEMLIMIT_INTERACTIVE)
    )
    /// libsodium's "moderate" level: 3 passes over 256 MiB.
    public static let moderate = PasswordHasher(
        operations: Int(crypto_pwhash_OPSLIMIT_MODERATE),
        memoryBytes: Int(crypto_pwhash_MEMLIMIT_MODERATE)
    )

    public init(operations: Int, memoryBytes: Int, maxWaiting: Int = 32) {
        self.operations = operations
        self.memoryBytes = memoryBytes
        self.admission = Admission(limit: max(1, maxWaiting))
    }

    private static let queue = DispatchQueue(label: "Stockroom.passwords", attributes: .concurrent)
    private static let slots = DispatchSemaphore(value: 2)
    /// Hashes running or waiting for one of the `slots`, and how many may: beyond it a
    /// request fails at once with `UNAVAILABLE` rather than joining a queue that only
    /// grows while an attacker keeps sending logins. Each waiter also parks a thread.
    /// Per hasher (the server's is one), so one caller's flood of checks cannot refuse
    /// another's.
    private final class Admission: Sendable {
        let limit: Int
        let count = Mutex(0)
        init(limit: Int) { self.limit = limit }
    }
    private let admission: Admission

    /// Hashes and checks that may run or wait at once (two run at a time).
    public var maxWaiting: Int { admission.limit }

    private func offload<T: Sendable>(_ work: @escaping @Sendable () -> T) async throws -> T {
        let admission = self.admission
        let admit = admission.count.withLock { count in
            guard count < admission.limit else { return false }
            count += 1
            return true
        }
        guard admit else { throw StockroomError(.unavailable, "too many password checks in progress; try again shortly") }
        return await withCheckedContinuation { continuation in
            Self.queue.async {
                Self.slots.wait()
                let result = work()
                Self.slots.signal()
                admission.count.withLock { $0 -= 1 }
                continuation.resume(returning: result)
            }
        }
    }

    public func hash(_ password: String) async throws -> String {
        Sodium.ensureInitialized()
        let (operations, memory) = (UInt64(self.operations), self.memoryBytes)
        let result: String? = try await offload {
            var output = [CChar](repeating: 0, count: Int(crypto_pwhash_STRBYTES))
            let bytes = Array(password.utf8).map { CChar(bitPattern: $0) }
            guard crypto_pwhash_str_alg(&output, bytes, UInt64(bytes.count), operations, memory, crypto_pwhash_ALG_ARGON2ID13) == 0 else {
                return nil
            }
            return String(nulTerminated: output)
        }
        guard let result else { throw StockroomError(.unavailable, "not enough memory to hash a password, try again") }
        return result
    }

    /// Constant-time verification (libsodium compares in constant time). Throws
    /// `UNAVAILABLE` when too many checks are waiting already.
    public func verify(_ password: String, against hash: String) async throws -> Bool {
        Sodium.ensureInitialized()
        return try await offload {
            let bytes = Array(password.utf8).map { CChar(bitPattern: $0) }
            return crypto_pwhash_str_verify(hash, bytes, UInt64(bytes.count)) == 0
        }
    }

    /// True when `hash` was made with other parameters than these.
    public func needsRehash(_ hash: String) -> Bool {
        crypto_pwhash_str_needs_rehash(hash, UInt64(operations), memoryBytes) != 0
    }
}
