import NIOCore

/// What the connection's task receives: a request, or the protocol error that ends the
/// connection (delivered in order, after the requests before it).
enum ServerRequest: Sendable {
    case command([ByteBuffer])
    case protocolError(ProtocolError)
}

/// Framing on the event loop: bytes in, whole requests out. After a protocol error it
/// discards everything, so nothing sent after it is ever executed.
struct RequestDecoder: ByteToMessageDecoder {
    typealias InboundOut = ServerRequest

    var parser: RequestParser
    private var failed = false

    init(limits: ProtocolLimits) {
        parser = RequestParser(limits: limits)
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard !failed else {
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return .needMoreData
        }
        do {
            guard let request = try parser.next(&buffer) else { return .needMoreData }
            context.fireChannelRead(wrapInboundOut(.command(request)))
            return .continue
        } catch {
            failed = true
            buffer.moveReaderIndex(to: buffer.writerIndex)
            context.fireChannelRead(wrapInboundOut(.protocolError(error)))
            return .needMoreData
        }
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // Whole requests that arrived before the client closed still run; a partial one
        // cannot.
        let state = try decode(context: context, buffer: &buffer)
        if state == .needMoreData { buffer.moveReaderIndex(to: buffer.writerIndex) }
        return state
    }
}
