import LibPQ
import Logging

/// Signals `wakeup` on every notification on `channels`, on a connection of its own,
/// until cancelled; reconnects a second after it breaks, and signals once per
/// (re)connection for whatever happened while it was not listening. How the delivery
/// workers hear of new work without polling.
func listen(on channels: [String], connection: PostgresConnection.Configuration, wakeup: Wakeup, logger: Logger) async {
    while !Task.isCancelled {
        do {
            let listener = try await PostgresConnection.connect(connection, logger: logger)
            defer { Task { await listener.close() } }
            var streams: [AsyncThrowingStream<PostgresNotification, any Error>] = []
            for channel in channels { streams.append(try await listener.notifications(on: channel)) }
            wakeup.signal()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for stream in streams { group.addTask { for try await _ in stream { wakeup.signal() } } }
                try await group.next()
                group.cancelAll()
            }
        } catch {
            logger.debug("listening for work failed; reconnecting", metadata: ["channels": "\(channels)", "error": "\(error)"])
        }
        try? await Task.sleep(for: .seconds(1))
    }
}
