import Foundation
import NIOCore
import Stockroom
@testable import StockroomDelivery
import Testing

/// E-mail without I/O: addresses, the rendered message (encoded words, quoted-printable,
/// dates, Message-ID), DATA's dot-stuffing, reply framing, and mail URLs.
@Suite("Mail without I/O: messages, encodings, replies, URLs")
struct MailMessageTests {
    static let from = try! MailAddress(parsing: "Shop <shop@example.com>")
    static let date = Date(timeIntervalSince1970: 1_796_437_743)  // Sat, 05 Dec 2026 02:29:03 UTC

    static func message(to: MailAddress = try! MailAddress(address: "ann@example.com", name: "Ann Lee"), subject: String = "Order 5 confirmed", body: String = "Hello\n") -> MailMessage {
        MailMessage(from: from, to: to, subject: subject, body: body, messageKey: "mail.order_confirmation:5", date: date)
    }

    static func headers(_ rendered: String) -> [String: String] {
        let head = rendered.components(separatedBy: "\r\n\r\n")[0].replacingOccurrences(of: "\r\n ", with: " ")
        var headers: [String: String] = [:]
        for line in head.components(separatedBy: "\r\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            headers[String(parts[0])] = String(parts[1].dropFirst())
        }
        return headers
    }

    @Test func aPlainMessageHasEveryHeaderAndAQuotedPrintableBody() {
        let rendered = Self.message().rendered()
        let headers = Self.headers(rendered)
        #expect(headers["Date"] == "Sat, 05 Dec 2026 02:29:03 +0000")
        #expect(headers["From"] == "Shop <shop@example.com>")
        #expect(headers["To"] == "Ann Lee <ann@example.com>")
        #expect(headers["Subject"] == "Order 5 confirmed")
        #expect(headers["Message-ID"] == "<stockroom.mail=2Eorder_confirmation=3A5@example.com>")
        #expect(headers["MIME-Version"] == "1.0")
        #expect(headers["Content-Type"] == "text/plain; charset=utf-8")
        #expect(headers["Content-Transfer-Encoding"] == "quoted-printable")
        #expect(rendered.hasSuffix("\r\n\r\nHello\r\n"))
        #expect(rendered.utf8.allSatisfy { $0 < 128 })
        // Every LF is part of a CRLF.
        #expect(rendered.replacingOccurrences(of: "\r\n", with: "").firstIndex(where: { $0 == "\n" || $0 == "\r" }) == nil)
    }

    @Test func theMessageIdIsTheSameForTheSameKeyAndDiffersOtherwise() {
        let one = MailMessage(from: Self.from, to: Self.from, subject: "a", body: "", messageKey: "job-7", date: Date())
        let again = MailMessage(from: Self.from, to: Self.from, subject: "b", body: "x", messageKey: "job-7", date: Date().addingTimeInterval(60))
        let other = MailMessage(from: Self.from, to: Self.from, subject: "a", body: "", messageKey: "job-8")
        #expect(one.messageID == again.messageID && one.messageID != other.messageID)
        // Keys that differ only in characters outside the plain set still differ.
        #expect(MailMessage.messageID(key: "a b", domain: "x") != MailMessage.messageID(key: "a_b", domain: "x"))
        #expect(MailMessage.messageID(key: "a>b\r\n", domain: "x") == "stockroom.a=3Eb=0D=0A@x")
    }

    @Test func nonASCIINamesAndSubjectsBecomeUTF8EncodedWords() {
        let to = try! MailAddress(address: "zoe@example.com", name: "Zoë Ångström")
        let rendered = Self.message(to: to, subject: "Bestellung 5: Größe ✓").rendered()
        let headers = Self.headers(rendered)
        #expect(headers["To"] == "=?UTF-8?B?" + Data("Zoë Ångström".utf8).base64EncodedString() + "?= <zoe@example.com>")
        #expect(headers["Subject"] == "=?UTF-8?B?" + Data("Bestellung 5: Größe ✓".utf8).base64EncodedString() + "?=")
        #expect(rendered.utf8.allSatisfy { $0 < 128 })
    }

    @Test func longNamesAreSplitIntoWordsBetweenCharactersAndNoLineIsLong() throws {
        let name = String(repeating: "Ünïcödé ", count: 12) + "👩‍👩‍👧‍👦"
        let to = try MailAddress(address: "long@example.com", name: name)
        let rendered = Self.message(to: to, subject: String(repeating: "ä", count: 100)).rendered()
        for line in rendered.components(separatedBy: "\r\n") { #expect(line.utf8.count <= 78, "\(line)") }
        // Each word decodes to whole characters on its own, and together to the name.
        let words = MIMEEncoding.encodedWords(name).components(separatedBy: "\r\n ")
        #expect(words.count > 1)
        var decoded = ""
        for word in words {
            #expect(word.hasPrefix("=?UTF-8?B?") && word.hasSuffix("?=") && word.utf8.count <= 75)
            let data = try #require(Data(base64Encoded: String(word.dropFirst(10).dropLast(2))))
            decoded += try #require(String(data: data, encoding: .utf8))
        }
        #expect(decoded == name)
    }

    @Test func asciiNamesWithSpecialsAreQuoted() throws {
        let to = try MailAddress(address: "o@example.com", name: #"O'Brien, "Pat" \ Co"#)
        #expect(MailMessage.header(to) == #""O'Brien, \"Pat\" \\ Co" <o@example.com>"#)
        #expect(MailMessage.header(try MailAddress(address: "o@example.com")) == "<o@example.com>")
        let parsed = try MailAddress(parsing: #""Shop, Ltd" <shop@example.com>"#)
        #expect(parsed.name == "Shop, Ltd" && parsed.address == "shop@example.com")
        #expect(try MailAddress(parsing: "shop@example.com").name == nil)
    }

    @Test func headerInjectionThroughNamesAndSubjectsIsImpossible() throws {
        let to = try MailAddress(address: "ann@example.com", name: "Ann\r\nBcc: victim@example.com")
        let rendered = Self.message(to: to, subject: "Hi\r\nBcc: victim@example.com\nX-Evil: 1").rendered()
        let head = rendered.components(separatedBy: "\r\n\r\n")[0]
        #expect(!head.contains("\r\nBcc:") && !head.contains("\r\nX-Evil"))
        #expect(Self.headers(rendered)["To"] == #""Ann Bcc: victim@example.com" <ann@example.com>"#)
        #expect(Self.headers(rendered)["Subject"] == "Hi Bcc: victim@example.com X-Evil: 1")
        // A subject set after init is cleaned when rendered.
        var later = Self.message()
        later.subject = "Hi\r\nBcc: victim@example.com"
        #expect(Self.headers(later.rendered())["Subject"] == "Hi Bcc: victim@example.com")
        // Text that looks like an encoded-word is encoded, so it reads as written.
        #expect(MIMEEncoding.headerText("=?UTF-8?B?SGk=?=", quotingSpecials: false).hasPrefix("=?UTF-8?B?PT9"))
        // Addresses that would end a command or header early are refused outright.
        for bad in ["ann@example.com\r\nRCPT TO:<x@y>", "ann@example.com>", "<ann@example.com", "a n@example.com", "ann", "@example.com", "ann@", "ann@ex@ample.com", "zoë@example.com", ""] {
            #expect(throws: MailAddress.InvalidAddress.self) { try MailAddress(address: bad) }
        }
    }

    @Test func theBodyIsQuotedPrintableWithLinesOfAtMost76() {
        let body = "Grüße\nA line with a trailing space \n" + String(repeating: "x", count: 200) + "\n=equals\r\nlast"
        let encoded = MIMEEncoding.quotedPrintable(body)
        #expect(encoded.hasPrefix("Gr=C3=BC=C3=9Fe\r\nA line with a trailing space=20\r\n"))
        #expect(encoded.contains("\r\n=3Dequals\r\nlast\r\n"))
        for line in encoded.components(separatedBy: "\r\n") { #expect(line.utf8.count <= 76) }
        // Decoding (soft breaks removed, =XX undone) gives the body back with CRLF.
        #expect(Self.decodeQP(encoded) == body.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\n", with: "\r\n") + "\r\n")
        // A =XX is never split by a soft break.
        let accents = MIMEEncoding.quotedPrintable(String(repeating: "é", count: 40))
        for line in accents.components(separatedBy: "\r\n") where !line.isEmpty {
            #expect(line.utf8.count <= 76)
            #expect(line.hasSuffix("=") ? (line.dropLast().utf8.count % 3 == 0) : (line.utf8.count % 3 == 0))
        }
    }

    static func decodeQP(_ text: String) -> String {
        let joined = text.replacingOccurrences(of: "=\r\n", with: "")
        var bytes: [UInt8] = []
        var utf8 = Array(joined.utf8)[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "="), utf8.count >= 2 {
                bytes.append(UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16)!)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func dataDotStuffsLinesThatStartWithADotAndEndsWithALoneDot() {
        let message = Self.message(body: ".\n..hidden\nnormal.\n.")
        let data = SMTPConversation.data(message.rendered())
        #expect(data.hasSuffix("\r\n\r\n..\r\n...hidden\r\nnormal.\r\n..\r\n.\r\n"))
        // Only the final line is a lone dot: the message cannot end early.
        #expect(data.components(separatedBy: "\r\n").filter { $0 == "." }.count == 1)
        // Bare LF and CR in what is rendered become CRLF.
        #expect(SMTPConversation.data("a\nb\rc\r\n") == "a\r\nb\r\nc\r\n.\r\n")
    }

    @Test func moneyIsFormattedInTheCurrencysMinorUnit() {
        #expect(OrderMail.money(1250, "EUR") == "EUR 12.50")
        #expect(OrderMail.money(5, "USD") == "USD 0.05")
        #expect(OrderMail.money(-1999, "GBP") == "GBP -19.99")
        #expect(OrderMail.money(1250, "JPY") == "JPY 1250")
        #expect(OrderMail.money(1250, "BHD") == "BHD 1.250")
    }

    @Test func repliesAreFramedIncludingMultiLineAndSplitReads() throws {
        var decoder = SMTPReplyDecoder()
        var buffer = ByteBuffer(string: "250-sink.test Hello\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n220 go")
        let reply = try #require(try decoder.next(&buffer))
        #expect(reply.code == 250 && reply.lines == ["sink.test Hello", "STARTTLS", "AUTH PLAIN LOGIN"])
        #expect(try decoder.next(&buffer) == nil)
        buffer.writeString(" ahead\n")
        #expect(try decoder.next(&buffer) == SMTPReply(code: 220, lines: ["go ahead"]))
        var bare = ByteBuffer(string: "354\r\n")
        #expect(try decoder.next(&bare) == SMTPReply(code: 354, lines: [""]))
    }

    @Test func hostileRepliesAreBoundedAndMalformedOnesRefused() {
        var decoder = SMTPReplyDecoder()
        var long = ByteBuffer(string: "250 " + String(repeating: "x", count: 5000))
        #expect(throws: SMTPReplyDecoder.Malformed.self) { try decoder.next(&long) }
        var many = ByteBuffer(string: String(repeating: "250-x\r\n", count: 200))
        var fresh = SMTPReplyDecoder()
        #expect(throws: SMTPReplyDecoder.Malformed.self) { try fresh.next(&many) }
        for bad in ["hello\r\n", "25\r\n", "250xhello\r\n"] {
            var buffer = ByteBuffer(string: bad)
            var decoder = SMTPReplyDecoder()
            #expect(throws: SMTPReplyDecoder.Malformed.self) { try decoder.next(&buffer) }
        }
        var mixed = ByteBuffer(string: "250-a\r\n550 b\r\n")
        var decoder2 = SMTPReplyDecoder()
        #expect(throws: SMTPReplyDecoder.Malformed.self) { try decoder2.next(&mixed) }
    }

    @Test func mailURLsAreParsedWithDefaultsAndPercentDecodedCredentials() throws {
        let plain = try SMTPConfiguration(url: "smtp://relay.example.com", from: Self.from)
        #expect(plain.host == "relay.example.com" && plain.port == 25 && plain.security == .startTLSWhenOffered && !plain.hasCredentials)
        let secure = try SMTPConfiguration(url: "smtps://us%40er:p%3Ass%2Fw@relay.example.com", from: Self.from)
        #expect(secure.port == 465 && secure.security == .implicitTLS)
        #expect(secure.credentials?.user == "us@er" && secure.credentials?.password == "p:ss/w")
        let required = try SMTPConfiguration(url: "SMTP://127.0.0.1:2525?starttls=required", from: Self.from)
        #expect(required.port == 2525 && required.security == .startTLSRequired && required.isLoopback)
        #expect(try SMTPConfiguration(url: "smtp://[::1]:2525", from: Self.from).host == "::1")
        #expect(plain.connectTimeout == .seconds(10) && plain.replyTimeout == .seconds(30))
    }

    @Test func badMailURLsSayWhatIsWrongWithoutThePassword() {
        let cases: [(String, String)] = [
            ("http://u:hunter2@relay.example.com", "scheme"),
            ("relay.example.com", "scheme"),
            ("smtp://u:hunter2@", "host"),
            ("smtp://u:hunter2@relay.example.com:0", "port"),
            ("smtp://u:hunter2@relay.example.com/inbox", "path"),
            ("smtp://u:hunter2@relay.example.com?tls=yes", "unknown option"),
            ("smtp://u:hunter2@relay.example.com?starttls=maybe", "starttls"),
            ("smtps://u:hunter2@relay.example.com?starttls=required", "smtp:// only"),
            ("smtp://:hunter2@relay.example.com", "user"),
            ("smtp://u:hunter2 @relay.example.com", "spaces"),
            ("smtp://u:hunter2@relay.example.com:99999999999999999999", "port"),
        ]
        for (url, expected) in cases {
            do {
                _ = try SMTPConfiguration(url: url, from: Self.from)
                Issue.record("\(expected): accepted")
            } catch {
                #expect(error.description.contains(expected), "\(error)")
                #expect(!error.description.contains("hunter2"))
            }
        }
    }

    @Test func authWithoutTLSGoesToLoopbackOnly() throws {
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "[::1]"] {
            let configuration = try SMTPConfiguration(url: "smtp://u:p@\(host)", from: Self.from)
            #expect(configuration.mayAuthenticate(overTLS: false) && configuration.mayAuthenticate(overTLS: true), "\(host)")
        }
        for host in ["relay.example.com", "10.0.0.1", "[2001:db8::1]", "localhost.example.com", "127.evil.example", "127.0.0.1.evil.example"] {
            let configuration = try SMTPConfiguration(url: "smtp://u:p@\(host)", from: Self.from)
            #expect(!configuration.mayAuthenticate(overTLS: false) && configuration.mayAuthenticate(overTLS: true), "\(host)")
        }
    }

    @Test func theDescriptionNeverShowsCredentials() throws {
        let configuration = try SMTPConfiguration(url: "smtps://mailer:hunter2@relay.example.com", from: Self.from)
        #expect(configuration.description == "smtps://relay.example.com:465 with AUTH PLAIN, from shop@example.com")
        #expect(!"\(configuration)".contains("hunter2") && !String(reflecting: configuration).contains("hunter2"))
    }
}
