import NIOCore

/// Closes connections that hold resources for nothing: idle ones (nothing read or written
/// for `idleTimeout`, and no command in progress), and slow readers (replies piling up past
/// the write buffer's high water mark for `slowReaderTimeout`).
///
/// Sits between the request decoder and the connection handler: it counts requests in and
/// replies out, so it knows whether a command is in progress.
final class ConnectionGuard: ChannelDuplexHandler {
    typealias InboundIn = ServerRequest
    typealias InboundOut = ServerRequest
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let idleTimeout: TimeAmount
    private let slowReaderTimeout: TimeAmount
    private var unanswered = 0
    /// When the last reply was handed on. IdleStateHandler counts a write once it has
    /// been flushed, and a reply's flush can come a loop tick after it: a check falling
    /// in between would close the connection with the reply still unsent.
    private var lastReply = NIODeadline.now()
    private var slowReaderCheck: Scheduled<Void>?

    init(idleTimeout: TimeAmount, slowReaderTimeout: TimeAmount) {
        self.idleTimeout = idleTimeout
        self.slowReaderTimeout = slowReaderTimeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        unanswered += 1
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        unanswered = max(0, unanswered - 1)
        lastReply = .now()
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .all {
            // Never in the middle of a command: a slow query is not an idle client. Nor
            // just after one (see `lastReply`); the handler checks again a timeout later.
            if unanswered == 0, NIODeadline.now() - lastReply >= idleTimeout { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            slowReaderCheck?.cancel()
            slowReaderCheck = nil
        } else if slowReaderCheck == nil {
            let channel = context.channel
            slowReaderCheck = context.eventLoop.scheduleTask(in: slowReaderTimeout) {
                if !channel.isWritable { channel.close(promise: nil) }
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        slowReaderCheck?.cancel()
        context.fireChannelInactive()
    }
}
