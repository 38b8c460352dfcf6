import NIOCore
import Synchronization

/// The open connections, so a graceful shutdown can reach each one.
final class ConnectionRegistry: Sendable {
    private struct State {
        var channels: [Int: any Channel] = [:]
        var shuttingDown = false
    }
    private let state = Mutex(State())

    var isShuttingDown: Bool { state.withLock { $0.shuttingDown } }

    /// Registers a connection; false when the server is already shutting down.
    func add(_ id: Int, _ channel: any Channel) -> Bool {
        state.withLock { state in
            guard !state.shuttingDown else { return false }
            state.channels[id] = channel
            return true
        }
    }

    func remove(_ id: Int) {
        _ = state.withLock { $0.channels.removeValue(forKey: id) }
    }

    /// Stops reading from every connection. Each one's task then answers the requests it
    /// already received — the one in progress normally, newer ones with `-SHUTDOWN` — and
    /// closes.
    func beginShutdown() {
        let channels = state.withLock { state in
            state.shuttingDown = true
            return Array(state.channels.values)
        }
        for channel in channels { channel.close(mode: .input, promise: nil) }
    }
}
