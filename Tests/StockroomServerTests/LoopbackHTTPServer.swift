import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// An HTTP/1.1 server on 127.0.0.1, port 0, for the test doubles of the outside world
/// (`WebhookReceiver`, `StandInProcessor`): each request, whole, goes to `answer`, whose
/// status and body go back after its delay. `answered` runs as the answer is written.
final class LoopbackHTTPServer: Sendable {
    struct Answer: Sendable {
        var status: Int
        var body: String
        var contentType = "text/plain"
        var delay: TimeAmount = .zero
    }

    typealias Handle = @Sendable (HTTPRequestHead, [UInt8]) -> Answer

    private let channel: any Channel
    let port: Int

    private init(channel: any Channel) {
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
    }

    /// `answer` may be set after the server exists (it usually needs the object that
    /// owns the server): until it is, requests get 503.
    static func start(answered: @escaping @Sendable () -> Void = {}, answer: @escaping @Sendable (HTTPRequestHead, [UInt8]) -> Answer?) async throws -> LoopbackHTTPServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(answer: { answer($0, $1) ?? Answer(status: 503, body: "") }, answered: answered))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return LoopbackHTTPServer(channel: channel)
    }

    func stop() async { try? await channel.close() }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private let answer: Handle
        private let answered: @Sendable () -> Void
        private var head: HTTPRequestHead?
        private var body: [UInt8] = []

        init(answer: @escaping Handle, answered: @escaping @Sendable () -> Void) {
            self.answer = answer
            self.answered = answered
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = []
            case .body(let buffer):
                body += buffer.readableBytesView
            case .end:
                guard let head else { return }
                let answer = self.answer(head, body)
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                context.eventLoop.scheduleTask(in: answer.delay) {
                    let (handler, context) = bound.value
                    var headers = HTTPHeaders()
                    headers.add(name: "content-type", value: answer.contentType)
                    headers.add(name: "content-length", value: "\(answer.body.utf8.count)")
                    handler.answered()
                    context.write(handler.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: HTTPResponseStatus(statusCode: answer.status), headers: headers))), promise: nil)
                    context.write(handler.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: answer.body)))), promise: nil)
                    context.writeAndFlush(handler.wrapOutboundOut(.end(nil)), promise: nil)
                }
            }
        }
    }
}
