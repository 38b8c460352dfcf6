import NIOCore
import Synchronization

/// One server reply: a three-digit code and its text lines (`250-first`, `250 last`).
struct SMTPReply: Sendable, Equatable, CustomStringConvertible {
    var code: Int
    var lines: [String]

    var isPositive: Bool { (200..<400).contains(code) }
    var isTransient: Bool { (400..<500).contains(code) }

    /// The code and the first line, shortened and without control characters: safe to
    /// record (servers do not echo passwords; a hostile one is still bounded).
    var description: String {
        let text = MailAddress.oneLine(lines.first ?? "")
        return "\(code) \(text.prefix(200))"
    }
}

/// Frames replies out of the bytes a server sends, with bounds a hostile server cannot
/// push us past: a line longer than `maxLineLength` or a reply of more than `maxLines`
/// lines is an error, not a growing buffer.
struct SMTPReplyDecoder: ByteToMessageDecoder {
    typealias InboundOut = SMTPReply

    /// RFC 5321 allows 512 per reply line; some servers send longer EHLO lines.
    static let maxLineLength = 2048
    static let maxLines = 100

    private var pending: [String] = []
    private var pendingCode: Int?
    let upgrade: STARTTLSGuard

    init(upgrade: STARTTLSGuard = STARTTLSGuard()) { self.upgrade = upgrade }

    struct Malformed: Error, Sendable, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        try upgrade.checkNothingBeforeHandshake(buffer)
        guard let reply = try next(&buffer) else { return .needMoreData }
        try upgrade.replied(leaving: buffer)
        context.fireChannelRead(Self.wrapInboundOut(reply))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }

    /// The next complete reply in `buffer`, consuming its lines; nil when more bytes
    /// are needed. A plain function, so that the framing is tested without a channel.
    mutating func next(_ buffer: inout ByteBuffer) throws -> SMTPReply? {
        while true {
            let view = buffer.readableBytesView
            guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
                if view.count > Self.maxLineLength { throw Malformed(reason: "the server sent a reply line longer than \(Self.maxLineLength) bytes") }
                return nil
            }
            let length = newline - view.startIndex
            guard length <= Self.maxLineLength else { throw Malformed(reason: "the server sent a reply line longer than \(Self.maxLineLength) bytes") }
            var line = buffer.readBytes(length: length + 1)!
            line.removeLast()
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            guard line.count >= 3, line[0...2].allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
                line.count == 3 || line[3] == UInt8(ascii: " ") || line[3] == UInt8(ascii: "-")
            else { throw Malformed(reason: "the server sent a malformed reply line") }
            let code = Int(line[0] - 48) * 100 + Int(line[1] - 48) * 10 + Int(line[2] - 48)
            if let pendingCode, pendingCode != code { throw Malformed(reason: "the server changed the code within a multi-line reply") }
            let text = line.count > 4 ? String(decoding: line[4...], as: UTF8.self) : ""
            pending.append(text)
            if line.count > 3, line[3] == UInt8(ascii: "-") {
                guard pending.count < Self.maxLines else { throw Malformed(reason: "the server sent a reply of more than \(Self.maxLines) lines") }
                pendingCode = code
                continue
            }
            defer { pending = []; pendingCode = nil }
            return SMTPReply(code: code, lines: pending)
        }
    }
}

/// Refuses plaintext that arrives between the reply to STARTTLS and the TLS handshake.
/// A man in the middle could append fake replies there (after "220 go ahead", say "250
/// AUTH …"), which would otherwise be read as if they had come over TLS (RFC 3207 §4.2,
/// CVE-2011-0411). Set before STARTTLS is written; cleared on the event loop when TLS
/// is in the pipeline, after which every byte comes through it.
final class STARTTLSGuard: Sendable {
    private enum State { case off, awaitingReply, awaitingHandshake }
    private let state = Mutex(State.off)

    func expectReply() { state.withLock { $0 = .awaitingReply } }
    func handshakeStarted() { state.withLock { $0 = .off } }

    func replied(leaving buffer: ByteBuffer) throws {
        try state.withLock { state in
            guard state == .awaitingReply else { return }
            state = .awaitingHandshake
            if buffer.readableBytes > 0 { throw Self.injected }
        }
    }

    func checkNothingBeforeHandshake(_ buffer: ByteBuffer) throws {
        if buffer.readableBytes > 0, state.withLock({ $0 == .awaitingHandshake }) { throw Self.injected }
    }

    private static let injected = SMTPReplyDecoder.Malformed(reason: "the server sent more after agreeing to STARTTLS, before the TLS handshake (possible injection)")
}
