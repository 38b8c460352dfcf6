import Foundation
import NIOCore
import Synchronization

/// One SMTP session on a connected channel, command by command (RFC 5321): greeting,
/// EHLO (HELO when EHLO is refused), STARTTLS and EHLO again when offered, AUTH PLAIN
/// when there are credentials, MAIL FROM, RCPT TO, DATA, QUIT.
///
/// Each command and its reply run under one deadline; when it passes the channel is
/// closed, which ends the wait, and the error says it timed out.
struct SMTPConversation {
    let channel: any Channel
    var replies: NIOAsyncChannelInboundStream<SMTPReply>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let client: SMTPClient
    let upgrade: STARTTLSGuard

    private var configuration: SMTPConfiguration { client.configuration }

    mutating func send(_ message: MailMessage) async throws {
        let greeting = try await exchange(nil, step: "greeting")
        guard greeting.code == 220 else { throw SMTPError.unexpected(greeting, after: "greeting") }
        var extensions = try await hello()
        var secure = configuration.security == .implicitTLS
        if !secure {
            if extensions.keys.contains("STARTTLS") {
                upgrade.expectReply()
                let reply = try await exchange("STARTTLS", step: "STARTTLS")
                guard reply.code == 220 else { throw SMTPError.unexpected(reply, after: "STARTTLS") }
                try await client.startTLS(on: channel, upgrade)
                secure = true
                // The handshake runs as this EHLO is written; its failure ends this wait.
                extensions = try await hello()
            } else if configuration.security == .startTLSRequired {
                throw SMTPError(.transient, "the server does not offer STARTTLS, and the mail URL says starttls=required")
            }
        }
        if let credentials = configuration.credentials {
            guard configuration.mayAuthenticate(overTLS: secure) else {
                throw SMTPError(.transient, "refusing to send AUTH without TLS to \(configuration.host), which is not loopback: the server did not offer STARTTLS (use smtps:// or a relay that offers STARTTLS)")
            }
            let mechanisms = (extensions["AUTH"] ?? "").uppercased().split(separator: " ")
            guard mechanisms.contains("PLAIN") else {
                throw SMTPError(.transient, "the server does not offer AUTH PLAIN (it offers: \(mechanisms.isEmpty ? "no AUTH" : mechanisms.joined(separator: " ")))")
            }
            let token = Data(([0] + Array(credentials.user.utf8) + [0] + Array(credentials.password.utf8))).base64EncodedString()
            let reply = try await exchange("AUTH PLAIN " + token, step: "AUTH PLAIN")
            guard reply.code == 235 else {
                throw SMTPError(reply.code >= 500 ? .permanent : .transient, "AUTH PLAIN: the server refused the credentials: \(reply)", replyCode: reply.code)
            }
        }
        try await expect(250, command: "MAIL FROM:<\(configuration.from.address)>", step: "MAIL FROM")
        try await expect(250, 251, command: "RCPT TO:<\(message.to.address)>", step: "RCPT TO")
        try await expect(354, command: "DATA", step: "DATA")
        let reply = try await exchange(Self.data(message.rendered()), raw: true, step: "end of data")
        guard reply.code == 250 else { throw SMTPError.unexpected(reply, after: "end of data") }
        // Sent: the relay took it. A failing QUIT changes nothing.
        _ = try? await exchange("QUIT", step: "QUIT")
    }

    /// EHLO, or HELO after a 5xx to it (a server from before ESMTP); the extensions the
    /// server announced, by upper-cased keyword, with their parameters.
    private mutating func hello() async throws -> [String: String] {
        let name = configuration.heloName ?? Self.addressLiteral(channel.localAddress)
        let reply = try await exchange("EHLO \(name)", step: "EHLO")
        if reply.code == 250 {
            var extensions: [String: String] = [:]
            for line in reply.lines.dropFirst() {
                let parts = line.split(separator: " ", maxSplits: 1)
                guard let keyword = parts.first else { continue }
                extensions[keyword.uppercased()] = parts.count > 1 ? String(parts[1]) : ""
            }
            return extensions
        }
        guard reply.code >= 500 else { throw SMTPError.unexpected(reply, after: "EHLO") }
        try await expect(250, command: "HELO \(name)", step: "HELO")
        return [:]
    }

    private mutating func expect(_ codes: Int..., command: String, step: String) async throws {
        let reply = try await exchange(command, step: step)
        guard codes.contains(reply.code) else { throw SMTPError.unexpected(reply, after: step) }
    }

    /// Writes `command` (a line, or with `raw` bytes as they are) and reads the reply,
    /// within `replyTimeout`. `step` names it in errors; the command itself never
    /// appears there (AUTH's holds the password).
    private mutating func exchange(_ command: String?, raw: Bool = false, step: String) async throws -> SMTPReply {
        let timedOut = TimeoutFlag()
        let channel = self.channel
        let timer = channel.eventLoop.scheduleTask(in: SMTPClient.timeAmount(configuration.replyTimeout)) {
            timedOut.set()
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        do {
            if let command {
                try await outbound.write(ByteBuffer(string: raw ? command : command + "\r\n"))
            }
            guard let reply = try await replies.next() else {
                throw SMTPError(.transient, "\(step): the server closed the connection")
            }
            return reply
        } catch {
            if timedOut.isSet {
                throw SMTPError(.transient, "\(step): no reply within \(configuration.replyTimeout)")
            }
            if let error = error as? SMTPError { throw error }
            if let error = error as? SMTPReplyDecoder.Malformed { throw SMTPError(.transient, "\(step): \(error)") }
            throw SMTPError(.transient, "\(step): \(SMTPClient.describe(error))")
        }
    }

    /// The rendered message as DATA carries it: CRLF line ends, a line that starts with
    /// a dot gets a second one (RFC 5321 §4.5.2), then the lone dot that ends it.
    static func data(_ rendered: String) -> String {
        var text = ""
        for line in MIMEEncoding.lines(of: rendered) {
            text += (line.hasPrefix(".") ? "." : "") + line + "\r\n"
        }
        return text + ".\r\n"
    }

    /// `[192.0.2.1]` or `[IPv6:2001:db8::1]`: our end of the connection, as EHLO may
    /// name it when we have no better name.
    static func addressLiteral(_ address: SocketAddress?) -> String {
        guard let ip = address?.ipAddress else { return "[127.0.0.1]" }
        if case .v6 = address { return "[IPv6:\(ip)]" }
        return "[\(ip)]"
    }
}

/// Set by the deadline's timer on the event loop, read by the waiting task.
private final class TimeoutFlag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
