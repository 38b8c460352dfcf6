/// An address in a From or To header: a display name, which may be any text (UTF-8
/// included), and an address, which must be plain ASCII so that it can go into SMTP's
/// `MAIL FROM`/`RCPT TO` and a header without any encoding.
///
/// Rules it keeps, so that no header or command can be injected through it:
/// - the address has no spaces, control characters, `<`, `>`, quotes or other characters
///   that would end it early in a command or header, one `@`, non-empty local part and
///   domain, at most 254 bytes — otherwise `init` throws;
/// - the name has its control characters (CR and LF included) replaced by spaces, so it
///   is always one line; `MailMessage` quotes or encodes it.
public struct MailAddress: Sendable, Equatable, CustomStringConvertible {
    public let name: String?
    public let address: String

    public struct InvalidAddress: Error, Sendable, Equatable, CustomStringConvertible {
        public let reason: String
        public var description: String { "invalid e-mail address: \(reason)" }
    }

    public init(address: String, name: String? = nil) throws(InvalidAddress) {
        try Self.check(address)
        self.address = address
        let cleaned = name.map(Self.oneLine)
        self.name = cleaned?.isEmpty == false ? cleaned : nil
    }

    /// `"Shop <shop@example.com>"`, `"\"Shop, Ltd\" <shop@example.com>"` or
    /// `"shop@example.com"`: what `--mail-from` takes.
    public init(parsing text: String) throws(InvalidAddress) {
        let text = text.mailTrimming(" \t")
        guard text.hasSuffix(">"), let open = text.lastIndex(of: "<") else {
            try self.init(address: text)
            return
        }
        var name = text[..<open].mailTrimming(" \t")
        if name.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") {
            name = String(name.dropFirst().dropLast()).replacingOccurrences(of: "\\\"", with: "\"").replacingOccurrences(of: "\\\\", with: "\\")
        }
        let address = String(text[text.index(after: open)..<text.index(before: text.endIndex)])
        try self.init(address: address, name: name.isEmpty ? nil : name)
    }

    /// What follows the last `@`: where a Message-ID's right part comes from.
    public var domain: Substring { address[address.index(after: address.lastIndex(of: "@")!)...] }

    public var description: String { name.map { "\($0) <\(address)>" } ?? address }

    private static func check(_ address: String) throws(InvalidAddress) {
        guard !address.isEmpty, address.utf8.count <= 254 else { throw InvalidAddress(reason: "must be 1 to 254 bytes") }
        let forbidden: Set<UInt8> = Set("<>()[]\\,;:\"".utf8)
        guard address.utf8.allSatisfy({ $0 > 32 && $0 < 127 && !forbidden.contains($0) }) else {
            throw InvalidAddress(reason: "must be ASCII without spaces, control characters or any of <>()[]\\,;:\"")
        }
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw InvalidAddress(reason: "must be local-part@domain")
        }
    }

    /// Control characters, line and paragraph separators become spaces (a run of them,
    /// such as CRLF, one space), so the text is always one line.
    static func oneLine(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        var replacing = false
        for scalar in text.unicodeScalars {
            let value = scalar.value
            if value < 32 || (0x7F...0x9F).contains(value) || value == 0x2028 || value == 0x2029 {
                if !replacing { scalars.append(" ") }
                replacing = true
            } else {
                scalars.append(scalar)
                replacing = false
            }
        }
        return String(scalars).mailTrimming(" ")
    }
}

extension StringProtocol {
    /// Without the given characters at either end (Foundation's needs a CharacterSet).
    func mailTrimming(_ set: String) -> String {
        let trimmed = set.unicodeScalars
        var scalars = Substring(String(self)).unicodeScalars
        while let first = scalars.first, trimmed.contains(first) { scalars.removeFirst() }
        while let last = scalars.last, trimmed.contains(last) { scalars.removeLast() }
        return String(String.UnicodeScalarView(scalars))
    }
}
