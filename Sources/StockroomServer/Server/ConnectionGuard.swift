import NIOCore

/// Closes connections that hold resources for nothing: idle ones (no request read and no
/// reply written for `idleTimeout`, and no command in progress), and slow readers (replies
/// piling up past the write buffer's high water mark for `slowReaderTimeout`).
///
/// Sits between the request decoder and the connection handler: it counts requests in and
/// replies out, so it knows whether a command is in progress, and when the last of either
/// passed. (NIO's IdleStateHandler counted raw reads and flushed writes instead: a
/// promise and a callback per reply, and a reply written but not yet flushed looked like
/// no reply at all.)
final class ConnectionGuard: ChannelDuplexHandler {
    typealias InboundIn = ServerRequest
    typealias InboundOut = ServerRequest
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let idleTimeout: TimeAmount
    private let slowReaderTimeout: TimeAmount
    private var unanswered = 0
    private var lastActivity = NIODeadline.now()
    private var idleCheck: Scheduled<Void>?
    private var slowReaderCheck: Scheduled<Void>?

    init(idleTimeout: TimeAmount, slowReaderTimeout: TimeAmount) {
        self.idleTimeout = idleTimeout
        self.slowReaderTimeout = slowReaderTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        lastActivity = .now()
        scheduleIdleCheck(at: lastActivity + idleTimeout, context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        slowReaderCheck?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        unanswered += 1
        lastActivity = .now()
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        unanswered = max(0, unanswered - 1)
        lastActivity = .now()
        context.write(data, promise: promise)
    }

    /// One timer per connection, rearmed when it fires rather than on every request.
    private func scheduleIdleCheck(at deadline: NIODeadline, context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleCheck = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = bound.value
            handler.checkIdle(context: context)
        }
    }

    private func checkIdle(context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        let idleAt = lastActivity + idleTimeout
        if NIODeadline.now() < idleAt {
            scheduleIdleCheck(at: idleAt, context: context)
        } else if unanswered > 0 {
            // Never in the middle of a command: a slow query is not an idle client.
            scheduleIdleCheck(at: .now() + idleTimeout, context: context)
        } else {
            context.close(promise: nil)
        }
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
        idleCheck?.cancel()
        slowReaderCheck?.cancel()
        context.fireChannelInactive()
    }
}
