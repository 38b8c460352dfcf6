import Foundation
import NIOCore
import NIOPosix
@testable import StockroomDelivery
import Testing

/// The SMTP client against a real server: aiosmtpd on loopback (scripts/smtp-sink.py),
/// plain, with STARTTLS, with implicit TLS and AUTH PLAIN, and failing in each way a
/// relay can.
@Suite("Mail over SMTP: a real aiosmtpd on loopback")
struct SMTPClientTests {
    static let from = try! MailAddress(parsing: "Stockroom Shop <shop@example.com>")
    static let to = try! MailAddress(address: "zoe@example.com", name: "Zoë Ångström")

    static func client(_ url: String, ca: String? = nil, replyTimeout: Duration = .seconds(30)) throws -> SMTPClient {
        var configuration = try SMTPConfiguration(url: url, from: from, trustedCAFile: ca)
        configuration.replyTimeout = replyTimeout
        return try SMTPClient(configuration: configuration)
    }

    static func message(key: String = "test-\(UUID().uuidString)") -> MailMessage {
        MailMessage(from: from, to: to, subject: "Größe ✓: order 5", body: "Hello Zoë,\n.\nTotal: EUR 25.00\n", messageKey: key)
    }

    /// The error `send` threw, or an issue when it sent.
    static func failure(_ client: SMTPClient, _ message: MailMessage = message()) async -> SMTPError? {
        do {
            try await client.send(message)
            Issue.record("sent, but should have failed")
            return nil
        } catch {
            return error
        }
    }

    @Test func plainSMTPToLoopbackDeliversAMessagePythonParses() async throws {
        try await SMTPSink.with { sink, _ in
            let message = Self.message(key: "mail.order_confirmation:5")
            try await Self.client("smtp://127.0.0.1:\(sink.port)").send(message)
            let received = try #require(sink.messages.first)
            #expect(sink.messages.count == 1)
            #expect(received["mail_from"] as? String == "shop@example.com")
            #expect(received["rcpt_tos"] as? [String] == ["zoe@example.com"])
            #expect(received["tls"] as? Bool == false)
            #expect(received["to_name"] as? String == "Zoë Ångström" && received["to_address"] as? String == "zoe@example.com")
            #expect(received["from_name"] as? String == "Stockroom Shop")
            #expect(received["subject"] as? String == "Größe ✓: order 5")
            #expect(received["message_id"] as? String == "<stockroom.mail=2Eorder_confirmation=3A5@example.com>")
            #expect(received["date_parsed"] is String)
            #expect(received["content_type"] as? String == "text/plain" && received["charset"] as? String == "utf-8")
            // The lone dot survived DATA (dot-stuffed, then unstuffed by the server).
            #expect((received["body"] as? String)?.replacingOccurrences(of: "\r\n", with: "\n") == "Hello Zoë,\n.\nTotal: EUR 25.00\n")
            #expect((received["defects"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func startTLSIsUsedWhenTheServerOffersIt() async throws {
        var options = SMTPSink.Options()
        options.starttls = true
        try await SMTPSink.with(options) { sink, certificates in
            // By name: SNI and the certificate's DNS name are checked.
            try await Self.client("smtp://localhost:\(sink.port)", ca: certificates.ca).send(Self.message())
            #expect(sink.messages.first?["tls"] as? Bool == true)
        }
    }

    @Test func starttlsRequiredFailsWhenTheServerDoesNotOfferIt() async throws {
        try await SMTPSink.with { sink, _ in
            let error = try #require(await Self.failure(try Self.client("smtp://127.0.0.1:\(sink.port)?starttls=required")))
            #expect(error.kind == .transient && error.message.contains("does not offer STARTTLS"))
            #expect(sink.messages.isEmpty)
        }
    }

    @Test func smtpsIsTLSFromTheStartWithAuthPlain() async throws {
        var options = SMTPSink.Options()
        options.implicitTLS = true
        options.auth = "mailer:s3cr:et"
        try await SMTPSink.with(options) { sink, certificates in
            try await Self.client("smtps://mailer:s3cr%3Aet@127.0.0.1:\(sink.port)", ca: certificates.ca).send(Self.message())
            let received = try #require(sink.messages.first)
            #expect(received["tls"] as? Bool == true && received["auth_login"] as? String == "mailer")
        }
    }

    @Test func authPlainAfterStartTLS() async throws {
        var options = SMTPSink.Options()
        options.starttls = true
        options.auth = "mailer:s3cret"
        try await SMTPSink.with(options) { sink, certificates in
            try await Self.client("smtp://mailer:s3cret@127.0.0.1:\(sink.port)", ca: certificates.ca).send(Self.message())
            let received = try #require(sink.messages.first)
            #expect(received["tls"] as? Bool == true && received["auth_login"] as? String == "mailer")
        }
    }

    @Test func authWithoutTLSIsAllowedToLoopbackOnly() async throws {
        var options = SMTPSink.Options()
        options.auth = "mailer:s3cret"
        options.authWithoutTLS = true
        try await SMTPSink.with(options) { sink, _ in
            try await Self.client("smtp://mailer:s3cret@127.0.0.1:\(sink.port)").send(Self.message())
            #expect(sink.messages.first?["auth_login"] as? String == "mailer")
        }
    }

    @Test func aWrongPasswordIsPermanentAndTheErrorDoesNotShowIt() async throws {
        var options = SMTPSink.Options()
        options.starttls = true
        options.auth = "mailer:s3cret"
        try await SMTPSink.with(options) { sink, certificates in
            let client = try Self.client("smtp://mailer:hunter2-wrong@127.0.0.1:\(sink.port)", ca: certificates.ca)
            let error = try #require(await Self.failure(client))
            #expect(error.kind == .permanent && error.replyCode == 535, "\(error)")
            #expect(error.message.hasPrefix("AUTH PLAIN"))
            for text in [error.message, error.description, "\(error)", String(reflecting: error)] {
                #expect(!text.contains("hunter2") && !text.contains(Data("\0mailer\0hunter2-wrong".utf8).base64EncodedString()))
            }
            #expect(sink.messages.isEmpty)
        }
    }

    @Test func aRefusedRecipientIsPermanentOn5xxAndTransientOn4xx() async throws {
        for (code, kind) in [(550, SMTPError.Kind.permanent), (450, .transient)] {
            var options = SMTPSink.Options()
            options.rejectRecipients = code
            try await SMTPSink.with(options) { sink, _ in
                let error = try #require(await Self.failure(try Self.client("smtp://127.0.0.1:\(sink.port)")))
                #expect(error.kind == kind && error.replyCode == code && error.message.hasPrefix("RCPT TO"), "\(error)")
            }
        }
    }

    @Test func anUntrustedCertificateIsTransient() async throws {
        var options = SMTPSink.Options()
        options.implicitTLS = true
        try await SMTPSink.with(options) { sink, _ in
            // The system's roots do not include the test's CA.
            let error = try #require(await Self.failure(try Self.client("smtps://127.0.0.1:\(sink.port)")))
            #expect(error.kind == .transient)
            #expect(sink.messages.isEmpty)
        }
    }

    @Test func aServerThatIsDownIsTransient() async throws {
        // A port that was just free: bound, then closed.
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(channel.localAddress?.port)
        try await channel.close()
        let error = try #require(await Self.failure(try Self.client("smtp://127.0.0.1:\(port)")))
        #expect(error.kind == .transient && error.message.hasPrefix("could not connect to 127.0.0.1:\(port)"), "\(error)")
    }

    @Test func aServerThatSaysNothingTimesOut() async throws {
        // Accepts connections and never answers.
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        defer { channel.close(promise: nil) }
        let port = try #require(channel.localAddress?.port)
        let started = ContinuousClock.now
        let error = try #require(await Self.failure(try Self.client("smtp://127.0.0.1:\(port)", replyTimeout: .milliseconds(300))))
        #expect(error.kind == .transient && error.message.contains("greeting: no reply within"), "\(error)")
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func aMissingCAFileIsAConfigurationError() throws {
        let configuration = try SMTPConfiguration(url: "smtp://127.0.0.1", from: Self.from, trustedCAFile: "/nonexistent/ca.pem")
        #expect(throws: SMTPConfigurationError.self) { try SMTPClient(configuration: configuration) }
    }
}

/// Servers that misbehave on purpose, played by a script.
@Suite("Mail over SMTP: scripted servers")
struct SMTPScriptedServerTests {
    @Test func plaintextInjectedAfterTheSTARTTLSReplyIsRefused() async throws {
        let server = try await ScriptedSMTPServer.start([
            "EHLO": "250-scripted\r\n250 STARTTLS\r\n",
            // A man in the middle appends a reply that would seem to come over TLS.
            "STARTTLS": "220 go ahead\r\n250-scripted\r\n250 AUTH PLAIN\r\n",
        ])
        defer { Task { await server.stop() } }
        let error = try #require(await SMTPClientTests.failure(try SMTPClientTests.client("smtp://127.0.0.1:\(server.port)")))
        #expect(error.kind == .transient && error.message.contains("before the TLS handshake"), "\(error)")
    }

    @Test func heloIsUsedWhenEhloIsRefusedAndDataIsDotStuffed() async throws {
        let server = try await ScriptedSMTPServer.start([
            "EHLO": "502 5.5.1 what is that\r\n", "HELO": "250 scripted\r\n", "MAIL": "250 ok\r\n", "RCPT": "250 ok\r\n",
            "DATA": "354 go\r\n", ".": "250 queued\r\n", "QUIT": "221 bye\r\n",
        ])
        defer { Task { await server.stop() } }
        try await SMTPClientTests.client("smtp://127.0.0.1:\(server.port)").send(SMTPClientTests.message())
        let commands = server.commands
        #expect(commands.first == "EHLO [127.0.0.1]" && commands.dropFirst().first == "HELO [127.0.0.1]")
        #expect(commands.contains("MAIL FROM:<shop@example.com>") && commands.contains("RCPT TO:<zoe@example.com>"))
        #expect(commands.suffix(2) == [".", "QUIT"])
    }

    @Test func aTemporaryGreetingIsTransientAndAPermanentOneIsNot() async throws {
        for (greeting, kind) in [("421 busy, try later\r\n", SMTPError.Kind.transient), ("554 go away\r\n", .permanent)] {
            let server = try await ScriptedSMTPServer.start(greeting: greeting, [:])
            let error = try #require(await SMTPClientTests.failure(try SMTPClientTests.client("smtp://127.0.0.1:\(server.port)")))
            #expect(error.kind == kind && error.message.hasPrefix("greeting: the server answered"), "\(error)")
            await server.stop()
        }
    }
}
