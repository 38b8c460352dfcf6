internal import CSodium

/// The few libsodium primitives Stockroom uses. libsodium is initialized once, lazily.
enum Sodium {
    private static let initialized: Bool = sodium_init() >= 0

    static func ensureInitialized() {
        precondition(initialized, "libsodium failed to initialize")
    }

    static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        ensureInitialized()
        var digest = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_BYTES))
        _ = crypto_hash_sha256(&digest, bytes, UInt64(bytes.count))
        return digest
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        ensureInitialized()
        var bytes = [UInt8](repeating: 0, count: count)
        randombytes_buf(&bytes, count)
        return bytes
    }

    /// Base64url without padding (RFC 4648 §5), the alphabet of session tokens.
    static func base64URL(_ bytes: [UInt8]) -> String {
        ensureInitialized()
        let variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING
        var output = [CChar](repeating: 0, count: sodium_base64_encoded_len(bytes.count, variant))
        _ = sodium_bin2base64(&output, output.count, bytes, bytes.count, variant)
        return String(nulTerminated: output)
    }

    static func base64URLDecode(_ text: String) -> [UInt8]? {
        ensureInitialized()
        let input = Array(text.utf8CString.dropLast())
        var output = [UInt8](repeating: 0, count: input.count)
        var length = 0
        let status = sodium_base642bin(&output, output.count, input, input.count, nil, &length, nil, sodium_base64_VARIANT_URLSAFE_NO_PADDING)
        guard status == 0 else { return nil }
        return Array(output.prefix(length))
    }
}

extension String {
    /// The text of a NUL-terminated C buffer.
    init(nulTerminated buffer: [CChar]) {
        self = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
