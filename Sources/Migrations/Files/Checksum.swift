import Foundation
internal import CSodium

enum Checksum {
    private static let sodiumReady: Bool = sodium_init() >= 0

    /// The text a checksum is computed over, and the text that is run: a byte order mark
    /// dropped and CRLF line ends turned into LF, so a checkout on Windows or an editor
    /// that changes line ends does not make an applied file look modified.
    static func normalize(_ text: String) -> String {
        var text = text
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        return text.replacingOccurrences(of: "\r\n", with: "\n")
    }

    /// SHA-256 in lowercase hex.
    static func sha256Hex(_ text: String) -> String {
        precondition(sodiumReady, "libsodium failed to initialize")
        let bytes = Array(text.utf8)
        var digest = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_BYTES))
        _ = crypto_hash_sha256(&digest, bytes, UInt64(bytes.count))
        let hex: [Character] = Array("0123456789abcdef")
        return String(digest.flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 0xF)]] })
    }
}
