import Foundation
import Synchronization

/// Limits how many of some kind of work run at once, with a short line in front and a
/// deadline on the wait (`AdmissionQueue` has the rules).
///
/// In front of order transactions: each is one statement of a few hundred microseconds
/// of backend CPU, and with more of them runnable than there are cores, the kernel lets
/// some wait for tens of milliseconds while others run. Admitting a few per core keeps
/// each one's time short and the tail closer to the median, and costs little throughput
/// while the cores are busy anyway. The pool's own size stays for everything else.
public final class AdmissionGate: Sendable {
    public let limit: Int
    public let maxWaiting: Int
    public let timeout: Duration
    /// What passes the gate, plural, for its refusals: "too many orders waiting…".
    public let work: String

    private typealias Queue = AdmissionQueue<CheckedContinuation<Void, any Error>, ContinuousClock.Instant>
    private struct State {
        var queue: Queue
        var nextID = 0
        /// A task that expires waiters past their deadline runs while any wait.
        var sweeping = false
    }

    private let state: Mutex<State>

    /// `limit` at once, `maxWaiting` in line (beyond that, refused at once), each for at
    /// most `timeout`. `work` names what passes, plural, in the refusals.
    public init(limit: Int, maxWaiting: Int = 1_024, timeout: Duration = .seconds(5), work: String = "requests") {
        self.limit = max(1, limit)
        self.maxWaiting = max(0, maxWaiting)
        self.timeout = timeout
        self.work = work
        state = Mutex(State(queue: Queue(limit: max(1, limit), maxWaiting: max(0, maxWaiting))))
    }

    /// One per core, and one more: the cores stay busy while one transaction's answer
    /// travels. Measured on two cores (`stockroom bench orders`, docs/BENCHMARKS.md), with
    /// events numbered at most every 20 ms: 8 clients placed 2,700–2,880 orders/s with a
    /// p99.9 of 15–16 ms through a limit of 3, against 3,030–3,080/s and 27–39 ms through
    /// 4 (2,520–2,600/s and 11–13 ms through 2); at 64 clients 3 did as well as 4.
    public static let defaultLimit = max(2, ProcessInfo.processInfo.activeProcessorCount + 1)

    /// Work running now, and waiting: for metrics and INFO.
    public var statistics: (inside: Int, waiting: Int) {
        state.withLock { ($0.queue.inside, $0.queue.waiting) }
    }

    /// Runs `body` once admitted. Throws `.unavailable` when the line is full or the
    /// wait passes `timeout`, and `CancellationError` when the task is cancelled while
    /// waiting; `body` has not run then.
    public func run<T>(_ body: () async throws -> T) async throws -> T {
        try await enter()
        defer { leave() }
        return try await body()
    }

    private func enter() async throws {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        let deadline = ContinuousClock.now + timeout
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let (entry, startSweeping) = state.withLock { state in
                    let entry = state.queue.enter(id, continuation, deadline: deadline)
                    guard case .queued = entry, !state.sweeping else { return (entry, false) }
                    state.sweeping = true
                    return (entry, true)
                }
                switch entry {
                case .admitted: continuation.resume()
                case .refused: continuation.resume(throwing: StockroomError(.unavailable, "too many \(work) waiting for the database; try again"))
                case .queued:
                    // Cancelled before it queued: the handler below found nothing to take out.
                    if Task.isCancelled { state.withLock { $0.queue.abandon(id) }?.resume(throwing: CancellationError()) }
                }
                if startSweeping { sweep() }
            }
        } onCancel: {
            state.withLock { $0.queue.abandon(id) }?.resume(throwing: CancellationError())
        }
    }

    private func leave() {
        state.withLock { $0.queue.leave() }?.resume()
    }

    /// One task for all waiters, rather than a timer each: at 64 clients and four
    /// admitted, a timer per waiter cost a task's creation and cancellation per order.
    private func sweep() {
        let step = min(timeout / 10, .milliseconds(100))
        Task { [self] in
            while true {
                try? await Task.sleep(for: step)
                let (expired, done) = state.withLock { state in
                    let expired = state.queue.expire(before: .now)
                    if state.queue.waiting == 0 { state.sweeping = false }
                    return (expired, !state.sweeping)
                }
                let error = StockroomError(.unavailable, "waited \(timeout) behind other \(work) for the database; try again")
                for waiter in expired { waiter.resume(throwing: error) }
                if done { return }
            }
        }
    }
}
