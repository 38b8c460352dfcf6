import Synchronization

/// Bounds the replies a connection has outstanding — requests read but not yet answered
/// on the wire — so a client that pipelines without reading cannot make the server hold
/// unbounded work for it. The reader acquires a slot per request; the writer releases it
/// once the reply is written.
final class ReplyWindow: Sendable {
    private struct State {
        var available: Int
        var waiters: [CheckedContinuation<Bool, Never>] = []
        var closed = false
    }
    private let state: Mutex<State>

    init(size: Int) {
        state = Mutex(State(available: size))
    }

    /// Waits for a slot; false when the window was closed (the writer is gone).
    func acquire() async -> Bool {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool? in
                if state.closed { return false }
                if state.available > 0 { state.available -= 1; return true }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    func release() {
        let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
            if state.waiters.isEmpty { state.available += 1; return nil }
            return state.waiters.removeFirst()
        }
        waiter?.resume(returning: true)
    }

    func close() {
        let waiters = state.withLock { state in
            state.closed = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: false) }
    }
}
