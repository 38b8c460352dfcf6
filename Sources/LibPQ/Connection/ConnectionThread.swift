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
/// While a libpq call blocks the thread (`blocking`), task jobs do not wait behind it:
/// those queued and those arriving are handed to the global executor. Otherwise a task
/// that prefers this thread — say, the one that would cancel the statement — could not
/// run until the statement it wants to cancel has ended. Operations (closures) stay queued,
/// in order.
///
/// Once stopped it finishes what is queued and exits; anything submitted after that is
/// handed to the global executor (jobs) or to a Dispatch thread (closures), so a task that
/// still prefers this executor never hangs. `join()` waits until it has exited, its
/// thread-local destructors included; a thread nobody joins is detached when it is done.
final class ConnectionThread: TaskExecutor, @unchecked Sendable {
    private enum Work {
        case job(UnownedJob)
        case closure(@Sendable () -> Void)
    }

    // `pending`, `isBlocking`, `stopping` and `exited` are guarded by `condition`.
    private let condition = NSCondition()
    private var pending: [Work] = []
    private var next = 0  // index of the oldest item of `pending`
    private var isBlocking = false
    private var stopping = false
    private var exited = false
    /// Guarded by `condition`: whether someone asked to join the thread, and who waits.
    private var joining = Joining.no
    /// From `pthread_create`, before `init` returns; read-only afterwards.
    private var handle = pthread_t()

    private enum Joining {
        case no
        case underway([CheckedContinuation<Void, Never>])
        case done
    }

    /// `name` shows in `top -H` and profiles. Linux keeps at most 15 bytes of it.
    init(name: String) {
        assert(name.utf8.count <= 15, "Linux cuts thread names to 15 bytes")
        let started = DispatchSemaphore(value: 0)
        // A joinable POSIX thread rather than Foundation's `Thread`, which detaches: a
        // closed connection's thread can then be waited for (`join`).
        let entry = ThreadEntry { [self] in
            // Straight to the kernel, the thread naming itself (proc(5)): Foundation's
            // `Thread.name` reached it only now and then on Linux — a flaky test saw the
            // creator's name, "oot.default-qos", kept. (Glibc's pthread_setname_np is a
            // GNU extension Swift does not import.)
            let comm = open("/proc/thread-self/comm", O_WRONLY)
            if comm >= 0 {
                _ = name.withCString { write(comm, $0, strlen($0)) }
                close(comm)
            }
            started.signal()
            runLoop()
        }
        let context = Unmanaged.passRetained(entry).toOpaque()
        let created = pthread_create(&handle, nil, { context in
            Unmanaged<ThreadEntry>.fromOpaque(context!).takeRetainedValue().body()
            return nil
        }, context)
        precondition(created == 0, "pthread_create failed: \(String(cString: strerror(created)))")
        started.wait()
    }

    deinit {
        // The last reference goes once the thread's loop has returned (it holds one until
        // then): a thread nobody joined releases its resources by itself.
        if case .no = joining { pthread_detach(handle) }
    }

    /// Whether the caller is running on this thread.
    var isCurrent: Bool { pthread_equal(pthread_self(), handle) != 0 }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if !submit(.job(job)) { globalConcurrentExecutor.enqueue(ExecutorJob(job)) }
    }

    /// Runs `body`, a call that may block, on this thread (the caller's), with task jobs
    /// sent elsewhere meanwhile.
    func blocking<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        isBlocking = true
        var jobs: [UnownedJob] = []
        var kept: [Work] = []
        for work in pending[next...] {
            switch work {
            case .job(let job): jobs.append(job)
            case .closure: kept.append(work)
            }
        }
        if !jobs.isEmpty {
            pending = kept
            next = 0
        }
        condition.unlock()
        for job in jobs { globalConcurrentExecutor.enqueue(ExecutorJob(job)) }
        defer {
            condition.lock()
            isBlocking = false
            condition.unlock()
        }
        return try body()
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

    /// Stops the thread and returns once it has exited, after what was queued before.
    /// Safe from a task running on this thread: the thread exits while the task waits, and
    /// the task resumes elsewhere.
    func join() async {
        stop()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            condition.lock()
            switch joining {
            case .done:
                condition.unlock()
                continuation.resume()
            case .underway(let waiters):
                joining = .underway(waiters + [continuation])
                condition.unlock()
            case .no:
                joining = .underway([continuation])
                condition.unlock()
                ThreadReaper.shared.join(handle) { [self] in
                    condition.lock()
                    guard case .underway(let waiters) = joining else { preconditionFailure("joined twice") }
                    joining = .done
                    condition.unlock()
                    for waiter in waiters { waiter.resume() }
                }
            }
        }
    }

    private func submit(_ work: Work) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !exited else { return false }
        if case .job = work, isBlocking { return false }
        pending.append(work)
        if pending.count - next == 1 { condition.signal() }
        return true
    }

    /// One item at a time, so that `blocking` can move every job still waiting.
    private func runLoop() {
        while true {
            condition.lock()
            while next == pending.count && !stopping { condition.wait() }
            if next == pending.count {
                exited = true
                condition.unlock()
                return
            }
            let work = pending[next]
            next += 1
            if next == pending.count {
                pending.removeAll(keepingCapacity: true)
                next = 0
            }
            condition.unlock()
            switch work {
            case .job(let job): job.runSynchronously(on: asUnownedTaskExecutor())
            case .closure(let body): body()
            }
        }
    }
}

/// The body of a thread started with `pthread_create`, passed through its `void *`.
private final class ThreadEntry {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}
