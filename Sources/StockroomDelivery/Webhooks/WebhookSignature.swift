internal import CSodium

/// Standard Webhooks signing (https://www.standardwebhooks.com): the signature of a
/// request is `v1,` + base64 of HMAC-SHA256 over `<webhook-id>.<webhook-timestamp>.<body>`,
/// keyed with the bytes the secret's base64 stands for (after `whsec_`).
public enum WebhookSignature {
    public static let secretPrefix = "whsec_"

    private static let initialized: Bool = sodium_init() >= 0

    /// A new secret: `whsec_` + base64 of 32 random bytes.
    public static func newSecret() -> String {
        precondition(initialized, "libsodium failed to initialize")
        var key = [UInt8](repeating: 0, count: 32)
        randombytes_buf(&key, key.count)
        return secretPrefix + base64(key)
    }

    /// The HMAC key a secret stands for; nil when it is not `whsec_` + base64.
    public static func key(fromSecret secret: String) -> [UInt8]? {
        precondition(initialized, "libsodium failed to initialize")
        guard secret.hasPrefix(secretPrefix) else { return nil }
        let input = Array(secret.utf8.dropFirst(secretPrefix.utf8.count)).map { CChar(bitPattern: $0) }
        var output = [UInt8](repeating: 0, count: input.count)
        var length = 0
        let status = sodium_base642bin(&output, output.count, input, input.count, nil, &length, nil, sodium_base64_VARIANT_ORIGINAL)
        guard status == 0, length > 0 else { return nil }
        return Array(output.prefix(length))
    }

    /// The `webhook-signature` header's value.
    public static func sign(key: [UInt8], id: String, timestamp: Int64, body: [UInt8]) -> String {
        precondition(initialized, "libsodium failed to initialize")
        var state = crypto_auth_hmacsha256_state()
        var mac = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_BYTES))
        _ = crypto_auth_hmacsha256_init(&state, key, key.count)
        let prefix = Array("\(id).\(timestamp).".utf8)
        _ = crypto_auth_hmacsha256_update(&state, prefix, UInt64(prefix.count))
        _ = crypto_auth_hmacsha256_update(&state, body, UInt64(body.count))
        _ = crypto_auth_hmacsha256_final(&state, &mac)
        return "v1," + base64(mac)
    }

    /// Whether `header` (space-separated signatures, as receivers get it) holds a valid
    /// `v1` signature of the request. Compares in constant time.
    public static func verify(header: String, key: [UInt8], id: String, timestamp: Int64, body: [UInt8]) -> Bool {
        let expected = Array(sign(key: key, id: id, timestamp: timestamp, body: body).utf8)
        return header.split(separator: " ").contains { candidate in
            let bytes = Array(candidate.utf8)
            return bytes.count == expected.count && sodium_memcmp(bytes, expected, bytes.count) == 0
        }
    }

    static func base64(_ bytes: [UInt8]) -> String {
        let variant = sodium_base64_VARIANT_ORIGINAL
        var output = [CChar](repeating: 0, count: sodium_base64_encoded_len(bytes.count, variant))
        _ = sodium_bin2base64(&output, output.count, bytes, bytes.count, variant)
        return String(decoding: output.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
