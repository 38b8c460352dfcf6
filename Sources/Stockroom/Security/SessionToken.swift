/// A session token: 256 random bits, shown to the client as base64url (43 characters)
/// and stored only as its SHA-256.
struct SessionToken {
    static let byteCount = 32
    static let textLength = 43

    let text: String
    let hash: [UInt8]

    static func generate() -> SessionToken {
        let text = Sodium.base64URL(Sodium.randomBytes(byteCount))
        return SessionToken(text: text, hash: Sodium.sha256(Array(text.utf8)))
    }

    /// The stored hash of a token a client presents, or nil when it cannot be a token.
    static func hash(of text: String) -> [UInt8]? {
        guard text.utf8.count == textLength, Sodium.base64URLDecode(text)?.count == byteCount else { return nil }
        return Sodium.sha256(Array(text.utf8))
    }
}
