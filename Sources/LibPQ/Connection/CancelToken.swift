internal import CLibPQ
internal import Dispatch
internal import Foundation
import Synchronization

/// libpq's `PGcancel` for one session, and the cancel requests sent with it that have not
/// settled yet.
///
/// A cancel request travels on a connection of its own and reaches the backend as a
/// signal, whatever it is doing by then. One that lands after its statement ended, while
/// the connection already runs the next one — possibly another borrower's — cancels the
/// wrong statement. So a connection that sent a cancel is not used again until the
/// request settled: `PQcancel` returns once the server closed the cancel connection,
/// which it does after signalling the backend. (pgx and asyncpg wait the same way.)
///
/// libpq 15 has no non-blocking cancel (`PQcancelCreate` and `PQcancelPoll` came with
/// 17), and `PQcancel` has no time limit of its own: it runs on a Dispatch thread, and
/// the connection waits for it only up to a deadline (see `waitUntilSettled`).
final class CancelToken: @unchecked Sendable {
    /// Freed when the last request using it returns, so that replacing it (on close or
    /// reconnect) never waits for a cancel stuck in `connect`.
    private final class Handle: @unchecked Sendable {
        let raw: OpaquePointer
        init(_ raw: OpaquePointer) { self.raw = raw }
        deinit { PQfreeCancel(raw) }
    }

    // Both guarded by `condition`.
    private let condition = NSCondition()
    private var handle: Handle?
    private var inFlight = 0

    init(_ pointer: OpaquePointer?) { handle = pointer.map(Handle.init) }

    /// Asks the server to cancel whatever the session is running, without waiting; false
    /// when no request went out: one is still on its way (a second would change
    /// nothing), or too many are stuck process-wide.
    ///
    /// `PQcancel` runs on a thread of its own, never on a Dispatch queue: it blocks until
    /// the server answers, which a hung server never does, and blocked workers of
    /// Dispatch's global queues are the very threads Swift's tasks run on.
    @discardableResult
    func send() -> Bool {
        condition.lock()
        guard let handle, inFlight == 0 else {
            condition.unlock()
            return false
        }
        guard Self.threads.add(1, ordering: .relaxed).newValue <= Self.maxThreads else {
            Self.threads.subtract(1, ordering: .relaxed)
            condition.unlock()
            return false
        }
        inFlight += 1
        condition.unlock()
        let thread = Thread {
            var message = [CChar](repeating: 0, count: 256)
            _ = PQcancel(handle.raw, &message, Int32(message.count))
            Self.threads.subtract(1, ordering: .relaxed)
            self.condition.lock()
            self.inFlight -= 1
            if self.inFlight == 0 { self.condition.broadcast() }
            self.condition.unlock()
        }
        thread.name = "LibPQ.cancel"
        thread.stackSize = 256 << 10
        thread.start()
        return true
    }

    /// Threads sending cancel requests, process-wide, and how many may: each waits for
    /// a server that may never answer. Past the limit a statement is not cancelled but
    /// cut off at its hard stop, which needs no thread.
    private static let threads = Atomic<Int>(0)
    static let maxThreads = 64

    /// Whether a request sent earlier may still reach the server.
    var isSettled: Bool {
        condition.lock()
        defer { condition.unlock() }
        return inFlight == 0
    }

    /// Waits until every request sent so far has settled, up to `deadline`; false if one
    /// has not by then, and the session must not run anything else.
    func waitUntilSettled(before deadline: ContinuousClock.Instant) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while inFlight > 0 {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { return false }
            _ = condition.wait(until: Date(timeIntervalSinceNow: left.seconds))
        }
        return true
    }

    func replace(with new: OpaquePointer?) {
        let handle = new.map(Handle.init)
        condition.lock()
        self.handle = handle
        condition.unlock()
    }
}

extension Duration {
    /// "150 ms", "5 s": for messages people read.
    var readable: String {
        let milliseconds = components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
        return milliseconds < 1000 || milliseconds % 1000 != 0 ? "\(milliseconds) ms" : "\(milliseconds / 1000) s"
    }

    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
