import NIOCore
import Synchronization

/// The open connections, so a graceful shutdown can reach each one and wait for the last
/// to close.
final class ConnectionRegistry: Sendable {
    private struct State {
        var channels: [Int: any Channel] = [:]
        var emptyWaiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())
    /// Read for every request, so an atomic rather than the lock.
    private let shuttingDown = Atomic<Bool>(false)

    var isShuttingDown: Bool { shuttingDown.load(ordering: .relaxed) }

    /// Registers a connection; false when the server is already shutting down.
    func add(_ id: Int, _ channel: any Channel) -> Bool {
        state.withLock { state in
            guard !shuttingDown.load(ordering: .relaxed) else { return false }
            state.channels[id] = channel
            return true
        }
    }

    func remove(_ id: Int) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.channels.removeValue(forKey: id)
            guard state.channels.isEmpty else { return [] }
            defer { state.emptyWaiters = [] }
            return state.emptyWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Stops reading from every connection. Each one then answers the requests it already
    /// received — the one in progress normally, newer ones with `-SHUTDOWN` — and closes.
    func beginShutdown() {
        let channels = state.withLock { state in
            shuttingDown.store(true, ordering: .relaxed)
            return Array(state.channels.values)
        }
        for channel in channels { channel.close(mode: .input, promise: nil) }
    }

    /// Closes every connection now, whatever it is doing.
    func closeAll() {
        let channels = state.withLock { Array($0.channels.values) }
        for channel in channels { channel.close(promise: nil) }
    }

    /// Returns once no connection is open.
    func waitUntilEmpty() async {
        await withCheckedContinuation { continuation in
            let empty = state.withLock { state in
                if state.channels.isEmpty { return true }
                state.emptyWaiters.append(continuation)
                return false
            }
            if empty { continuation.resume() }
        }
    }
}
