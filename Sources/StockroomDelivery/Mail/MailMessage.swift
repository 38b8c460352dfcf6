public import Foundation

/// One plain-text e-mail as RFC 5322 and MIME want it: what `SMTPClient` sends after
/// DATA. A value, rendered without I/O.
///
/// Rules it keeps:
/// - The rendering is 7-bit ASCII with CRLF line ends and no line over 78 characters:
///   names and subjects that are not plain short ASCII become RFC 2047 encoded-words,
///   the body is quoted-printable (lines of at most 76). So any relay carries it
///   unchanged, 8BITMIME or not.
/// - No header can be injected: addresses are checked by `MailAddress`, and control
///   characters (CR and LF among them) in names and the subject become spaces.
/// - The Message-ID derives from a key the caller keeps stable across retries, so a
///   message sent twice (an answer lost after DATA) is recognisably one message.
/// - Dot-stuffing is not done here: it belongs to SMTP's DATA (`SMTPClient`).
public struct MailMessage: Sendable, Equatable {
    public var from: MailAddress
    public var to: MailAddress
    public var subject: String
    /// Plain text; any line ends.
    public var body: String
    public var date: Date
    /// Without angle brackets: `<unique>@<domain>`.
    public var messageID: String

    /// `messageKey`: stable for one message across its retries (a job's idempotency
    /// key); it becomes the Message-ID's left part.
    public init(from: MailAddress, to: MailAddress, subject: String, body: String, messageKey: String, date: Date = Date()) {
        self.from = from
        self.to = to
        self.subject = MailAddress.oneLine(subject)
        self.body = body
        self.date = date
        self.messageID = Self.messageID(key: messageKey, domain: from.domain)
    }

    /// The key with every byte outside `[A-Za-z0-9_-]` written `=XX`: one-to-one (two
    /// keys never share a Message-ID), and only characters a Message-ID may hold
    /// (RFC 5322 `dot-atom-text`). Prefixed so that our IDs are recognisable.
    static func messageID(key: String, domain: Substring) -> String {
        var left = "stockroom."
        for byte in key.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "_"), UInt8(ascii: "-"):
                left.append(Character(UnicodeScalar(byte)))
            default:
                left += "=" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return left + "@" + domain
    }

    /// The message, headers and body, with CRLF line ends.
    public func rendered() -> String {
        var headers: [(String, String)] = [
            ("Date", MIMEEncoding.date(date)),
            ("From", Self.header(from)),
            ("To", Self.header(to)),
            // Cleaned again here: `subject` is a var, and may have been set after init.
            ("Subject", MIMEEncoding.headerText(MailAddress.oneLine(subject), quotingSpecials: false)),
            ("Message-ID", "<\(messageID)>"),
            ("MIME-Version", "1.0"),
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Transfer-Encoding", "quoted-printable"),
        ]
        // Transactional mail: out-of-office replies should not answer it (RFC 3834).
        headers.append(("Auto-Submitted", "auto-generated"))
        var text = ""
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        return text + "\r\n" + MIMEEncoding.quotedPrintable(body)
    }

    static func header(_ address: MailAddress) -> String {
        guard let name = address.name else { return "<\(address.address)>" }
        let display = MIMEEncoding.headerText(MailAddress.oneLine(name), quotingSpecials: true)
        let oneLine = "\(display) <\(address.address)>"
        // Encoded words may fold over lines, and a long name and address do not fit in
        // 78 characters with "From: "; the address then goes on a line of its own.
        return display.contains("\r\n") || oneLine.utf8.count > 70 ? "\(display)\r\n <\(address.address)>" : oneLine
    }
}

extension String {
    func leftPadded(to length: Int) -> String {
        count >= length ? self : String(repeating: "0", count: length - count) + self
    }
}
