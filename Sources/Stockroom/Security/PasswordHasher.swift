internal import CSodium
internal import Dispatch

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

    public init(operations: Int, memoryBytes: Int) {
        self.operations = operations
        self.memoryBytes = memoryBytes
    }

    private static let queue = DispatchQueue(label: "Stockroom.passwords", attributes: .concurrent)
    private static let slots = DispatchSemaphore(value: 2)

    private static func offload<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async {
                slots.wait()
                defer { slots.signal() }
                continuation.resume(returning: work())
            }
        }
    }

    public func hash(_ password: String) async throws -> String {
        Sodium.ensureInitialized()
        let (operations, memory) = (UInt64(self.operations), self.memoryBytes)
        let result: String? = await Self.offload {
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

    /// Constant-time verification (libsodium compares in constant time).
    public func verify(_ password: String, against hash: String) async -> Bool {
        Sodium.ensureInitialized()
        return await Self.offload {
            let bytes = Array(password.utf8).map { CChar(bitPattern: $0) }
            return crypto_pwhash_str_verify(hash, bytes, UInt64(bytes.count)) == 0
        }
    }

    /// True when `hash` was made with other parameters than these.
    public func needsRehash(_ hash: String) -> Bool {
        crypto_pwhash_str_needs_rehash(hash, UInt64(operations), memoryBytes) != 0
    }
}
