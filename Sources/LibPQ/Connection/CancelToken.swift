internal import CLibPQ
internal import Dispatch
import Synchronization

/// libpq's `PGcancel`, which may be used from any thread, guarded so that a cancel
/// racing with `close()` never touches freed memory.
final class CancelToken: Sendable {
    /// `PGcancel` is documented as safe to use from any thread.
    private struct Handle: @unchecked Sendable { let raw: OpaquePointer }
    private let pointer: Mutex<Handle?>

    init(_ pointer: OpaquePointer?) { self.pointer = Mutex(pointer.map(Handle.init)) }

    /// Asks the server to cancel whatever the connection is running. `PQcancel` opens a
    /// new connection to the server, which blocks: it runs on a Dispatch thread, never on
    /// the caller's (possibly cooperative) thread.
    func send() {
        DispatchQueue.global().async {
            self.pointer.withLock { pointer in
                guard let pointer else { return }
                var message = [CChar](repeating: 0, count: 256)
                _ = PQcancel(pointer.raw, &message, Int32(message.count))
            }
        }
    }

    func replace(with new: OpaquePointer?) {
        let handle = new.map(Handle.init)
        pointer.withLock { pointer in
            if let old = pointer { PQfreeCancel(old.raw) }
            pointer = handle
        }
    }
}

/// The life of one operation on a connection, shared between the thread running it and
/// whoever cancels it (task cancellation, or the timeout timer).
final class OperationControl: Sendable {
    enum Reason: Sendable { case task, timeout(Duration) }
    private enum Phase { case waiting, running, finished }
    private struct State { var phase = Phase.waiting; var reason: Reason? }
    private let state = Mutex(State())
    private let token: CancelToken

    init(token: CancelToken) { self.token = token }

    /// Called on the connection's thread before starting; nil when already cancelled.
    func begin() -> Reason? {
        state.withLock { state in
            if state.reason == nil { state.phase = .running }
            return state.reason
        }
    }

    /// Called after the operation; returns why it was cancelled, if it was.
    func finish() -> Reason? {
        state.withLock { state in
            state.phase = .finished
            return state.reason
        }
    }

    func cancel(_ reason: Reason) {
        let running = state.withLock { state -> Bool in
            guard state.reason == nil, state.phase != .finished else { return false }
            state.reason = reason
            return state.phase == .running
        }
        if running {
            token.send()
            resendWhileRunning(attempt: 1)
        }
    }

    /// A cancel request that reaches the server before the statement does — sent while
    /// it is still being written, or on a loaded machine — finds the session idle and is
    /// dropped. So while the operation runs on, ask again, a few times.
    private func resendWhileRunning(attempt: Int) {
        guard attempt <= 20 else { return }
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(250)) {
            guard self.state.withLock({ $0.phase == .running }) else { return }
            self.token.send()
            self.resendWhileRunning(attempt: attempt + 1)
        }
    }

    /// The error to throw for an operation cancelled for `reason`.
    static func error(for reason: Reason, underlying: (any Error)?) -> any Error {
        switch reason {
        case .task:
            return CancellationError()
        case .timeout(let limit):
            var error = PostgresError(code: .timeout, message: "query did not finish within \(limit.readable) and was cancelled", sqlState: .queryCanceled)
            if let server = underlying as? PostgresError, server.sqlState != .queryCanceled {
                error = server  // it failed for another reason before the cancel landed
            }
            return error
        }
    }
}

extension Duration {
    /// "150 ms", "5 s": for messages people read.
    var readable: String {
        let milliseconds = components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
        return milliseconds < 1000 || milliseconds % 1000 != 0 ? "\(milliseconds) ms" : "\(milliseconds / 1000) s"
    }
}
