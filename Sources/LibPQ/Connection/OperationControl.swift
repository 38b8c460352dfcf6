internal import CLibPQ
import Synchronization

/// The life of one operation on a connection, shared by the thread running it, the task
/// awaiting it, and the `Watchdog` that enforces its deadline.
///
/// An operation that outlives its deadline goes through two steps:
/// 1. At the deadline (or when its task is cancelled) a cancel request goes to the
///    server, again every 250 ms while the statement runs on (a request that arrives
///    before the statement does is dropped by the server).
/// 2. If the server has not ended it `grace` later — the backend is frozen, or the
///    network is gone — the connection's socket is shut down, which makes libpq's
///    blocking call return at once; the connection is marked broken so that a pool
///    discards it, and the awaiting task resumes with the error right away, whatever
///    the connection's thread is still doing.
///
/// Phases move forward only: waiting (queued on the connection's thread) → running →
/// finished.
final class OperationControl: Sendable {
    enum Reason: Sendable, Equatable { case task, timeout(Duration) }
    private enum Phase { case waiting, running, finished }

    private struct State {
        var phase = Phase.waiting
        var reason: Reason?
        /// When the next cancel request may go out, once one is due.
        var nextCancel: ContinuousClock.Instant?
        var cancelsSent = 0
        /// When to give up on the server: `grace` after the deadline or task cancellation.
        var hardStop: ContinuousClock.Instant?
        var abandoned = false
        /// Resumes the awaiting task early with an error; set when the task waits on a
        /// continuation, nil when the operation runs inline on the task's own thread.
        var abandon: (@Sendable (any Error) -> Void)?
    }

    let limit: Duration?
    let deadline: ContinuousClock.Instant?
    let grace: Duration
    private let state = Mutex(State())
    private let token: CancelToken
    private let socket: ConnectionSocket

    init(limit: Duration?, grace: Duration, token: CancelToken, socket: ConnectionSocket) {
        self.limit = limit
        self.deadline = limit.map { ContinuousClock.now + $0 }
        self.grace = grace
        self.token = token
        self.socket = socket
    }

    /// Lets the watchdog resume the awaiting task early.
    func onAbandon(_ abandon: @escaping @Sendable (any Error) -> Void) {
        let already = state.withLock { state -> (any Error)? in
            if state.abandoned, let reason = state.reason { return Self.error(for: reason, underlying: nil, abandoned: true) }
            state.abandon = abandon
            return nil
        }
        if let already { abandon(already) }
    }

    /// Called on the connection's thread before starting; the reason when it must not run.
    func begin() -> Reason? {
        state.withLock { state in
            if state.reason == nil { state.phase = .running }
            return state.reason
        }
    }

    /// Called on the connection's thread when the operation is over: why it was
    /// cancelled, if it was, and whether a cancel request went out for it.
    func finish() -> (reason: Reason?, sentCancel: Bool) {
        state.withLock { state in
            state.phase = .finished
            state.abandon = nil
            return (state.reason, state.cancelsSent > 0)
        }
    }

    /// The task awaiting the operation was cancelled.
    func cancel() {
        expire(.task, now: .now)
    }

    /// Called by the watchdog every tick while the operation is in flight.
    func tick(now: ContinuousClock.Instant) {
        if let deadline, now >= deadline, let limit { expire(.timeout(limit), now: now) }
        enum Step { case none, stop((@Sendable (any Error) -> Void)?, any Error) }
        let step = state.withLock { state -> Step in
            guard state.phase != .finished, state.reason != nil else { return .none }
            if let hardStop = state.hardStop, now >= hardStop {
                // On every tick past the hard stop: a reconnect inside the operation may
                // have opened a new socket since the last.
                if state.phase == .running { socket.sever() }
                guard !state.abandoned else { return .none }
                state.abandoned = true
                let abandon = state.abandon
                state.abandon = nil
                return .stop(abandon, Self.error(for: state.reason!, underlying: nil, abandoned: true))
            }
            if state.phase == .running, let next = state.nextCancel, now >= next {
                state.nextCancel = now + .milliseconds(250)
                // Counted by the token before the lock is let go: `finish` cannot slip in
                // between and miss a request still travelling.
                if token.send() { state.cancelsSent += 1 }
                return .none
            }
            return .none
        }
        if case .stop(let abandon, let error) = step { abandon?(error) }
    }

    /// Marks the operation cancelled for `reason` (the first reason wins) and starts the
    /// clock on its hard stop.
    private func expire(_ reason: Reason, now: ContinuousClock.Instant) {
        state.withLock { state in
            guard state.reason == nil, state.phase != .finished else { return }
            state.reason = reason
            state.hardStop = now + grace
            // Not yet running: it will not start (see `begin`), nothing to cancel.
            guard state.phase == .running else { return }
            state.nextCancel = now + .milliseconds(250)
            if token.send() { state.cancelsSent += 1 }
        }
    }

    /// The error to throw for an operation cancelled for `reason`.
    static func error(for reason: Reason, underlying: (any Error)?, abandoned: Bool = false) -> any Error {
        switch reason {
        case .task:
            return CancellationError()
        case .timeout(let limit):
            if let server = underlying as? PostgresError, server.code != .connection,
               server.sqlState != .queryCanceled, server.code != .timeout {
                return server  // it failed for another reason before the cancel landed
            }
            let what = abandoned
                ? "the database did not answer within \(limit.readable); the connection was closed"
                : "query did not finish within \(limit.readable) and was cancelled"
            return PostgresError(code: .timeout, message: what, sqlState: .queryCanceled)
        }
    }
}

/// A continuation that the first of two parties resumes — the connection's thread with
/// the result, or the watchdog with an error — and the other finds already taken.
final class Resumption<T: Sendable>: Sendable {
    private let continuation: Mutex<CheckedContinuation<T, any Error>?>

    init(_ continuation: CheckedContinuation<T, any Error>) {
        self.continuation = Mutex(continuation)
    }

    func resume(with result: Result<T, any Error>) {
        let taken = continuation.withLock { continuation -> CheckedContinuation<T, any Error>? in
            defer { continuation = nil }
            return continuation
        }
        taken?.resume(with: result)
    }
}
