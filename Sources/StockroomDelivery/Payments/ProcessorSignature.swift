import CSodium

/// The processor's webhook signature, as Stripe makes it: a header
/// `Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">[,v1=…]`, keyed
/// with the endpoint's signing secret as it is written (`whsec_…`, not decoded).
/// Several `v1` entries appear while a secret is being rolled; any one that matches
/// will do. `v0` and unknown schemes are ignored. Pure: tested without I/O.
public struct ProcessorSignature: Sendable {
    public enum Failure: Error, Equatable, Sendable {
        /// No header, or one without a timestamp or a v1 signature.
        case malformed
        /// Signed too long ago (or too far ahead): a replay, or a clock gone wrong.
        case stale
        /// No v1 signature matches the body.
        case mismatch
    }

    /// Longest header looked at: a real one is under 300 bytes.
    static let maxHeaderBytes = 4096
    /// Signatures looked at per header.
    static let maxSignatures = 8

    /// Checks `header` against `body`; `now` and `tolerance` in seconds.
    public static func verify(header: String?, body: [UInt8], secret: String, now: Int64, tolerance: Int64 = 300) throws(Failure) {
        guard let header, header.utf8.count <= maxHeaderBytes else { throw .malformed }
        var timestamp: Int64?
        var signatures: [[UInt8]] = []
        for item in header.split(separator: ",", omittingEmptySubsequences: true) {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let key = parts[0].trimmingSpaces, value = parts[1].trimmingSpaces
            if key == "t" {
                guard let seconds = Int64(value) else { throw .malformed }
                timestamp = seconds
            } else if key == "v1", signatures.count < maxSignatures, let bytes = hexBytes(value), bytes.count == 32 {
                signatures.append(bytes)
            }
        }
        guard let timestamp, !signatures.isEmpty else { throw .malformed }
        guard abs(now - timestamp) <= tolerance else { throw .stale }
        let expected = mac(secret: secret, timestamp: timestamp, body: body)
        guard signatures.contains(where: { equalInConstantTime($0, expected) }) else { throw .mismatch }
    }

    /// The header for `body` at `timestamp`: what the processor sends (and the tests'
    /// stand-in processor).
    public static func header(body: [UInt8], secret: String, timestamp: Int64) -> String {
        "t=\(timestamp),v1=" + hex(mac(secret: secret, timestamp: timestamp, body: body))
    }

    static func mac(secret: String, timestamp: Int64, body: [UInt8]) -> [UInt8] {
        let key = Array(secret.utf8)
        let message = Array("\(timestamp).".utf8) + body
        var out = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_BYTES))
        var state = crypto_auth_hmacsha256_state()
        _ = crypto_auth_hmacsha256_init(&state, key, key.count)
        _ = crypto_auth_hmacsha256_update(&state, message, UInt64(message.count))
        _ = crypto_auth_hmacsha256_final(&state, &out)
        return out
    }

    static func equalInConstantTime(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.count == b.count && sodium_memcmp(a, b, a.count) == 0
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes { out.append(digits[Int(byte >> 4)]); out.append(digits[Int(byte & 0x0F)]) }
        return String(decoding: out, as: UTF8.self)
    }

    static func hexBytes(_ text: Substring) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var text = self
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return text
    }
}
