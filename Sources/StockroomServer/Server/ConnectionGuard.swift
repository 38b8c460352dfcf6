import NIOCore

/// Closes connections that hold resources for nothing: idle ones (no request read and no
/// reply written for `idleTimeout`, and no command in progress), and stalled readers
/// (replies piled up past the write buffer's high water mark, and not one byte of them
/// taken by the client for `slowReaderTimeout`). A client that reads slowly but reads
/// keeps its connection: its replies are bounded by the water mark all the same.
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
    /// Reply bytes handed to the channel since it opened; minus what it still buffers,
    /// what the client has taken.
    private var written = 0
    private var drainedAtLastCheck = 0

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

    /// Sent by the connection handler when it enters or leaves subscribe mode.
    struct Subscribed: Sendable { let on: Bool }
    private var isSubscriber = false

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        if let event = event as? Subscribed {
            isSubscriber = event.on
            promise?.succeed()
            return
        }
        context.triggerUserOutboundEvent(event, promise: promise)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        unanswered = max(0, unanswered - 1)
        lastActivity = .now()
        written &+= unwrapOutboundIn(data).readableBytes
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
        } else if unanswered > 0 || isSubscriber {
            // Never in the middle of a command: a slow query is not an idle client. Nor a
            // subscriber waiting for events (as in Redis).
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
            drainedAtLastCheck = drained(context)
            scheduleSlowReaderCheck(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    private func scheduleSlowReaderCheck(context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        slowReaderCheck = context.eventLoop.scheduleTask(in: slowReaderTimeout) {
            let (handler, context) = bound.value
            handler.checkSlowReader(context: context)
        }
    }

    private func checkSlowReader(context: ChannelHandlerContext) {
        guard context.channel.isActive, !context.channel.isWritable else {
            slowReaderCheck = nil
            return
        }
        let drained = drained(context)
        if drained != drainedAtLastCheck {
            drainedAtLastCheck = drained
            scheduleSlowReaderCheck(context: context)
        } else {
            context.close(promise: nil)
        }
    }

    /// Reply bytes the client has taken off the socket's buffers so far.
    private func drained(_ context: ChannelHandlerContext) -> Int {
        let buffered = (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
        return written &- buffered
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        slowReaderCheck?.cancel()
        context.fireChannelInactive()
    }
}
