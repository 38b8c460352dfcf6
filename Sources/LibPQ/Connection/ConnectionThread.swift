internal import Dispatch
internal import Foundation

/// The one thread a connection's libpq calls run on, and a `TaskExecutor`.
///
/// libpq blocks, so its calls must stay off Swift's cooperative pool. Handing each call to
/// another thread and back costs two thread switches per statement, which is more than
/// the statement itself on a local server. So this thread is also a task executor:
/// `PostgresPool.withConnection` runs its body with this executor preferred, and a
/// statement issued from a task already on this thread runs inline, with no switch at all.
/// Calls from anywhere else are queued here and run in order.
///
/// Once stopped it finishes what is queued and exits; anything submitted after that is
/// handed to the global executor (jobs) or to a Dispatch thread (closures), so a task that
/// still prefers this executor never hangs.
final class ConnectionThread: TaskExecutor, @unchecked Sendable {
    private enum Work {
        case job(UnownedJob)
        case closure(@Sendable () -> Void)
    }

    // `pending`, `stopping` and `exited` are guarded by `condition`.
    private let condition = NSCondition()
    private var pending: [Work] = []
    private var stopping = false
    private var exited = false
    /// Written by the thread before `init` returns, read-only afterwards.
    private var threadID = pthread_self()

    init(name: String) {
        let started = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            threadID = pthread_self()
            started.signal()
            runLoop()
        }
        thread.name = name
        thread.start()
        started.wait()
    }

    /// Whether the caller is running on this thread.
    var isCurrent: Bool { pthread_equal(pthread_self(), threadID) != 0 }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if !submit(.job(job)) { globalConcurrentExecutor.enqueue(ExecutorJob(job)) }
    }

    /// Runs `body` on this thread after everything queued before it.
    func execute(_ body: @escaping @Sendable () -> Void) {
        if !submit(.closure(body)) { DispatchQueue.global().async(execute: body) }
    }

    /// Lets the thread exit once its queue is empty.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func submit(_ work: Work) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !exited else { return false }
        pending.append(work)
        if pending.count == 1 { condition.signal() }
        return true
    }

    private func runLoop() {
        var batch: [Work] = []
        while true {
            condition.lock()
            while pending.isEmpty && !stopping { condition.wait() }
            if pending.isEmpty {
                exited = true
                condition.unlock()
                return
            }
            swap(&batch, &pending)
            condition.unlock()
            for work in batch {
                switch work {
                case .job(let job): job.runSynchronously(on: asUnownedTaskExecutor())
                case .closure(let body): body()
                }
            }
            batch.removeAll(keepingCapacity: true)
        }
    }
}
