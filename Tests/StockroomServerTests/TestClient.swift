import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// A reply as the test client reads it.
indirect enum TestReply: Equatable, CustomStringConvertible {
    case simple(String)
    case error(String)
    case integer(Int)
    case bulk(String?)
    case array([TestReply])
    case map([TestReply])
    /// A RESP3 push (`>`).
    case push([TestReply])
    case null

    var description: String {
        switch self {
        case .simple(let s): "+\(s)"
        case .error(let s): "-\(s)"
        case .integer(let i): ":\(i)"
        case .bulk(let s): s.map { "$\($0)" } ?? "$nil"
        case .array(let a): "*\(a)"
        case .map(let m): "%\(m)"
        case .push(let p): ">\(p)"
        case .null: "_"
        }
    }

    /// The error code of an error reply.
    var errorCode: String? {
        if case .error(let text) = self { return String(text.prefix { $0 != " " }) }
        return nil
    }

    /// A JSON object result.
    func json() throws -> [String: Any] {
        guard case .simple(let text) = self, let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw TestClientError("expected a JSON object, got \(self)")
        }
        return object
    }
}

struct TestClientError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A raw TCP client that sends bytes and reads RESP replies, for end-to-end tests. It is
/// async (NIO), so waiting for the server never blocks a thread of the cooperative pool
/// that the server's tasks need.
final class TestClient {
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var buffer = ByteBuffer()

    private init(inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.inbound = inbound
        self.outbound = outbound
    }

    /// With `tls`, over TLS to the server named localhost (TLSTests).
    static func connect<T>(port: Int, tls: NIOSSLContext? = nil, isolation actor: isolated (any Actor)? = #isolation, _ body: (TestClient) async throws -> T) async throws -> T {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: "localhost"))
                    }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await body(TestClient(inbound: inbound.makeAsyncIterator(), outbound: outbound))
        }
    }

    func send(_ text: String) async throws {
        try await outbound.write(ByteBuffer(string: text))
    }

    func send(bytes: [UInt8]) async throws {
        try await outbound.write(ByteBuffer(bytes: bytes))
    }

    static func resp(_ arguments: [String]) -> String {
        "*\(arguments.count)\r\n" + arguments.map { "$\($0.utf8.count)\r\n\($0)\r\n" }.joined()
    }

    /// Sends one command as a RESP array and reads its reply.
    func call(_ arguments: String...) async throws -> TestReply {
        try await call(arguments)
    }

    func call(_ arguments: [String]) async throws -> TestReply {
        try await send(Self.resp(arguments))
        return try await reply()
    }

    /// The next reply; throws when the connection closes first.
    func reply() async throws -> TestReply {
        guard let reply = try await nextReply() else { throw TestClientError("connection closed") }
        return reply
    }

    /// The next reply, or nil when the server closed the connection.
    func nextReply() async throws -> TestReply? {
        while true {
            var cursor = buffer
            if let reply = Self.parse(&cursor) {
                buffer = cursor
                return reply
            }
            let chunk: ByteBuffer?
            do {
                chunk = try await inbound.next()
            } catch let error as IOError where error.errnoCode == ECONNRESET {
                chunk = nil  // a reset connection is a closed one
            }
            guard var more = chunk else { return nil }
            buffer.writeBuffer(&more)
        }
    }

    /// Every byte the server sends until it closes the connection, unparsed; a reset
    /// or a TLS failure ends it too.
    func bytesUntilClosed() async -> [UInt8] {
        var bytes = Array(buffer.readableBytesView)
        buffer.clear()
        while let chunk = try? await inbound.next() {
            bytes += chunk.readableBytesView
        }
        return bytes
    }

    /// True when the server closes the connection without sending anything more.
    func isClosed() async throws -> Bool {
        try await nextReply() == nil
    }

    private static func line(_ buffer: inout ByteBuffer) -> String? {
        let view = buffer.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let bytes = buffer.readBytes(length: newline - view.startIndex + 1)!
        return String(decoding: bytes.dropLast(2), as: UTF8.self)
    }

    static func parse(_ buffer: inout ByteBuffer) -> TestReply? {
        guard let type = buffer.readInteger(as: UInt8.self), let header = line(&buffer) else { return nil }
        switch type {
        case UInt8(ascii: "+"): return .simple(header)
        case UInt8(ascii: "-"): return .error(header)
        case UInt8(ascii: ":"): return .integer(Int(header)!)
        case UInt8(ascii: "_"): return .null
        case UInt8(ascii: "$"):
            let length = Int(header)!
            if length < 0 { return .bulk(nil) }
            guard buffer.readableBytes >= length + 2 else { return nil }
            let text = buffer.readString(length: length)!
            buffer.moveReaderIndex(forwardBy: 2)
            return .bulk(text)
        case UInt8(ascii: "*"), UInt8(ascii: "%"), UInt8(ascii: ">"):
            let count = Int(header)! * (type == UInt8(ascii: "%") ? 2 : 1)
            if count < 0 { return .null }
            var elements: [TestReply] = []
            for _ in 0..<count {
                guard let element = parse(&buffer) else { return nil }
                elements.append(element)
            }
            if type == UInt8(ascii: ">") { return .push(elements) }
            return type == UInt8(ascii: "%") ? .map(elements) : .array(elements)
        default:
            return .error("unexpected reply type \(Character(Unicode.Scalar(type)))")
        }
    }
}
