internal import CLibPQ

/// A message sent with `NOTIFY channel, 'payload'` or `pg_notify`.
public struct PostgresNotification: Sendable, Hashable {
    public var channel: String
    public var payload: String
    /// The server process that sent it.
    public var senderPID: Int32
}

extension PostgresConnection {
    /// Subscribes to `channel` (`LISTEN`) and returns its notifications as they arrive.
    /// Ending the iteration (or cancelling the iterating task) unsubscribes. The stream
    /// finishes with an error when the connection breaks.
    ///
    /// While anything listens, the connection's thread waits for notifications between
    /// statements in slices of 50 ms, so give listening its own connection rather than
    /// a busy pooled one.
    public func notifications(on channel: String) async throws -> AsyncThrowingStream<PostgresNotification, any Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: PostgresNotification.self, throwing: (any Error).self)
        let id = try await perform { connection in
            try connection.revalidateIfIdle()
            _ = try connection.rows(from: PQexec(connection.raw, "LISTEN \(PostgresQuery.quoteIdentifier(channel))"))
            let id = connection.listeners.add(channel: channel, continuation: continuation)
            connection.startListeningLoop()
            return id
        }
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            self.thread.execute { self.removeListener(id) }
        }
        return stream
    }

    private func removeListener(_ id: Int) {
        guard let channel = listeners.remove(id), !isClosed, !listeners.hasListeners(on: channel) else { return }
        if PQtransactionStatus(raw) == PQTRANS_IDLE {
            PQclear(PQexec(raw, "UNLISTEN \(PostgresQuery.quoteIdentifier(channel))"))
        }
    }

    private func startListeningLoop() {
        guard !listeners.isPolling else { return }
        listeners.isPolling = true
        thread.execute { self.pollNotifications() }
    }

    /// One slice of waiting; requeues itself so that statements submitted meanwhile run
    /// between slices.
    private func pollNotifications() {
        guard !isClosed, !listeners.isEmpty else {
            listeners.isPolling = false
            return
        }
        if PQstatus(raw) == CONNECTION_OK {
            Socket.wait(PQsocket(raw), events: Int16(POLLIN_VALUE), milliseconds: 50)
            _ = PQconsumeInput(raw)
        }
        deliverNotifications()
        guard PQstatus(raw) == CONNECTION_OK else {
            listeners.finishAll(throwing: connectionError("the connection was lost while listening"))
            listeners.isPolling = false
            return
        }
        thread.execute { self.pollNotifications() }
    }

    /// Hands out notifications libpq has collected, during a wait or during any statement.
    func deliverNotifications() {
        while let notice = PQnotifies(raw) {
            let notification = PostgresNotification(
                channel: String(cString: notice.pointee.relname),
                payload: String(cString: notice.pointee.extra),
                senderPID: notice.pointee.be_pid
            )
            PQfreemem(notice)
            listeners.deliver(notification)
        }
    }
}

/// Who listens on which channel; touched only on the connection's thread.
struct NotificationListeners {
    typealias Continuation = AsyncThrowingStream<PostgresNotification, any Error>.Continuation
    private var entries: [Int: (channel: String, continuation: Continuation)] = [:]
    private var nextID = 0
    var isPolling = false

    var isEmpty: Bool { entries.isEmpty }

    mutating func add(channel: String, continuation: Continuation) -> Int {
        nextID += 1
        entries[nextID] = (channel, continuation)
        return nextID
    }

    mutating func remove(_ id: Int) -> String? { entries.removeValue(forKey: id)?.channel }

    func hasListeners(on channel: String) -> Bool { entries.values.contains { $0.channel == channel } }

    func deliver(_ notification: PostgresNotification) {
        for entry in entries.values where entry.channel == notification.channel {
            entry.continuation.yield(notification)
        }
    }

    mutating func finishAll(throwing error: (any Error)?) {
        for entry in entries.values { entry.continuation.finish(throwing: error) }
        entries = [:]
    }
}
