import NIOCore
import NIOPosix
import Synchronization

/// An SMTP server on 127.0.0.1, port 0, that answers from a script: a greeting, then per
/// command word (EHLO, STARTTLS, …) the exact bytes to send, so tests can play servers
/// that misbehave in ways aiosmtpd will not. After a 354 it takes the message up to the
/// lone dot and answers with the script's "." entry. It records the commands it saw.
final class ScriptedSMTPServer: Sendable {
    let port: Int
    private let channel: any Channel
    private let seen = Mutex<[String]>([])

    private init(channel: any Channel) {
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
    }

    var commands: [String] { seen.withLock { $0 } }

    static func start(greeting: String = "220 scripted\r\n", _ script: [String: String]) async throws -> ScriptedSMTPServer {
        let box = Mutex<ScriptedSMTPServer?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Handler(greeting: greeting, script: script, record: { command in
                        box.withLock { $0 }?.seen.withLock { $0.append(command) }
                    }))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let server = ScriptedSMTPServer(channel: channel)
        box.withLock { $0 = server }
        return server
    }

    func stop() async { try? await channel.close() }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let greeting: String
        let script: [String: String]
        let record: @Sendable (String) -> Void
        var buffer = ""
        var inData = false

        init(greeting: String, script: [String: String], record: @escaping @Sendable (String) -> Void) {
            self.greeting = greeting
            self.script = script
            self.record = record
        }

        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: greeting)), promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            buffer += String(buffer: unwrapInboundIn(data))
            while let end = buffer.range(of: "\r\n") {
                let line = String(buffer[..<end.lowerBound])
                buffer = String(buffer[end.upperBound...])
                if inData {
                    guard line == "." else { continue }
                    inData = false
                }
                let word = line == "." ? "." : String(line.split(separator: " ").first ?? "").uppercased()
                record(line)
                let answer = script[word] ?? "500 unknown\r\n"
                if answer.hasPrefix("354") { inData = true }
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: answer)), promise: nil)
            }
        }
    }
}
