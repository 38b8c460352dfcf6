/// Why a message was not sent, and whether trying again later can help.
///
/// `transient`: a 4xx reply, no connection, a timeout, a broken connection, a server
/// that broke the protocol, or a relay that does not match our policy (no STARTTLS when
/// required, AUTH without TLS) — things that an operator or time can fix, so the job is
/// retried and the mail goes out once they are. `permanent`: a 5xx reply — the relay
/// refused this message, sender, recipient or our credentials, and will again.
///
/// The message never holds credentials: it is recorded with the job.
public struct SMTPError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case transient
        case permanent
    }

    public var kind: Kind
    public var message: String
    /// The server's reply code, when the failure was a reply.
    public var replyCode: Int?

    public init(_ kind: Kind, _ message: String, replyCode: Int? = nil) {
        self.kind = kind
        self.message = message
        self.replyCode = replyCode
    }

    public var description: String { message }

    /// A reply that was not the one expected after `step` (e.g. "RCPT TO").
    static func unexpected(_ reply: SMTPReply, after step: String) -> SMTPError {
        SMTPError(reply.code >= 500 ? .permanent : .transient, "\(step): the server answered \(reply)", replyCode: reply.code)
    }
}
