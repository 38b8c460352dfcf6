import Foundation

/// Where and how mail is sent: a relay from a URL, the From address, what TLS trusts,
/// and how long each wait may last.
///
/// - `smtp://[user[:password]@]host[:port]` (port 25): plain TCP, upgraded with STARTTLS
///   whenever the server offers it; `?starttls=required` makes a server that does not
///   offer it an error instead of sending in clear.
/// - `smtps://[user[:password]@]host[:port]` (port 465): TLS from the first byte.
/// - With a user, AUTH PLAIN; user and password are percent-decoded. AUTH is refused on
///   a connection without TLS unless the host is loopback (where nobody can listen in).
///
/// Credentials never appear in `description`, in errors, or in what is logged: a parse
/// error names what is wrong without echoing the URL.
public struct SMTPConfiguration: Sendable, CustomStringConvertible {
    public enum Security: String, Sendable, Equatable {
        /// Plain TCP, STARTTLS when the server offers it.
        case startTLSWhenOffered
        /// Plain TCP, then STARTTLS or an error.
        case startTLSRequired
        /// TLS from the start (smtps).
        case implicitTLS
    }

    public var host: String
    public var port: Int
    public var security: Security
    /// The envelope sender and the From header.
    public var from: MailAddress
    /// A PEM file of CA certificates to trust instead of the system's (a private relay,
    /// or a test's own CA).
    public var trustedCAFile: String?
    public var connectTimeout: Duration = .seconds(10)
    /// The longest wait for any one reply (TLS handshakes and writes included).
    public var replyTimeout: Duration = .seconds(30)
    /// What EHLO says we are; by default the address literal of our end of the
    /// connection (`[192.0.2.1]`), which is always true.
    public var heloName: String?

    let credentials: Credentials?

    /// A user and password that never print.
    struct Credentials: Sendable, Equatable, CustomStringConvertible, CustomReflectable {
        let user: String
        let password: String
        var description: String { "(credentials)" }
        /// `dump()` and debuggers show no fields either.
        var customMirror: Mirror { Mirror(self, children: []) }
    }

    public init(url: String, from: MailAddress, trustedCAFile: String? = nil) throws(SMTPConfigurationError) {
        guard url.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value != 127 }) else {
            throw SMTPConfigurationError("the mail URL must not contain spaces or control characters (percent-encode them)")
        }
        guard let components = URLComponents(string: url) else { throw SMTPConfigurationError("the mail URL is not a valid URL") }
        switch components.scheme?.lowercased() {
        case "smtp": security = .startTLSWhenOffered; port = 25
        case "smtps": security = .implicitTLS; port = 465
        case nil: throw SMTPConfigurationError("the mail URL has no scheme: use smtp:// or smtps://")
        case let other?: throw SMTPConfigurationError("the mail URL's scheme \"\(other.prefix(20))\" is not smtp or smtps")
        }
        var host = components.host ?? ""
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw SMTPConfigurationError("the mail URL has no host") }
        self.host = host
        // Foundation leaves `port` nil for a port it cannot represent ("…:99999999999").
        let authority = url.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false).dropFirst(2).first ?? ""
        let hostAndPort = (authority.split(separator: "?").first ?? "").split(separator: "@").last ?? ""
        if components.port == nil, hostAndPort.contains(":"), !hostAndPort.hasSuffix("]") {
            throw SMTPConfigurationError("the mail URL's port must be 1 to 65535")
        }
        if let explicit = components.port {
            guard (1...65535).contains(explicit) else { throw SMTPConfigurationError("the mail URL's port must be 1 to 65535") }
            port = explicit
        }
        guard components.percentEncodedPath.isEmpty || components.percentEncodedPath == "/" else {
            throw SMTPConfigurationError("the mail URL must not have a path")
        }
        for item in components.queryItems ?? [] {
            switch (item.name, item.value) {
            case ("starttls", "required"?):
                guard security != .implicitTLS else { throw SMTPConfigurationError("starttls=required applies to smtp:// only (smtps:// is TLS throughout)") }
                security = .startTLSRequired
            case ("starttls", "when-offered"?):
                guard security != .implicitTLS else { throw SMTPConfigurationError("starttls applies to smtp:// only") }
            case ("starttls", _):
                throw SMTPConfigurationError("starttls must be \"required\" or \"when-offered\"")
            default:
                throw SMTPConfigurationError("the mail URL has an unknown option \"\(item.name.prefix(40))\" (known: starttls)")
            }
        }
        if let encodedUser = components.percentEncodedUser {
            guard let user = encodedUser.removingPercentEncoding, !user.isEmpty else {
                throw SMTPConfigurationError("the mail URL's user is empty or badly percent-encoded")
            }
            guard let password = (components.percentEncodedPassword ?? "").removingPercentEncoding else {
                throw SMTPConfigurationError("the mail URL's password is badly percent-encoded")
            }
            // AUTH PLAIN separates its fields with NUL bytes.
            guard !user.contains("\0"), !password.contains("\0") else {
                throw SMTPConfigurationError("the mail URL's user and password must not contain NUL")
            }
            credentials = Credentials(user: user, password: password)
        } else {
            guard components.percentEncodedPassword == nil else { throw SMTPConfigurationError("the mail URL has a password but no user") }
            credentials = nil
        }
        self.from = from
        self.trustedCAFile = trustedCAFile
    }

    /// Whether the relay is on this machine: the only place AUTH may go without TLS.
    public var isLoopback: Bool {
        let host = host.lowercased()
        // 127.0.0.0/8 as an address, not a name that starts with "127." (127.evil.example).
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        let isIPv4Loopback = octets.count == 4 && octets[0] == "127" && octets.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isNumber) && (Int($0) ?? 256) < 256 }
        return host == "localhost" || isIPv4Loopback || host == "::1"
    }

    public var hasCredentials: Bool { credentials != nil }

    /// Whether AUTH may be sent on a connection that is (or is not) under TLS: always
    /// with TLS, without it only to loopback, where nobody else can listen in.
    public func mayAuthenticate(overTLS: Bool) -> Bool { overTLS || isLoopback }

    /// The relay and how it is reached, never the credentials.
    public var description: String {
        let scheme = security == .implicitTLS ? "smtps" : "smtp"
        let hostPart = host.contains(":") ? "[\(host)]" : host
        var text = "\(scheme)://\(hostPart):\(port)"
        if security == .startTLSRequired { text += "?starttls=required" }
        if credentials != nil { text += " with AUTH PLAIN" }
        return text + ", from \(from.address)"
    }
}

/// A mail URL that cannot be used; the message says why, without the URL itself (it may
/// hold a password).
public struct SMTPConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}
