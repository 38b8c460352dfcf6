internal import Foundation

/// Joins connection threads that were told to stop, so that `PostgresConnection.close()`
/// returns only once its thread is gone — thread-local destructors run, OpenSSL's
/// per-thread state freed — and a program may exit right after closing its pool.
///
/// `pthread_join` blocks, and the threads Swift's tasks run on must not. So one thread of
/// LibPQ's own does the joining, started on first use and kept, like the `Watchdog`'s.
/// A stopped connection thread only finishes what was queued before `close()`'s last
/// step, so each join waits microseconds.
final class ThreadReaper: @unchecked Sendable {
    static let shared = ThreadReaper()

    private let condition = NSCondition()
    private var queue: [(thread: pthread_t, then: @Sendable () -> Void)] = []

    private init() {
        let thread = Thread { [self] in run() }
        thread.name = "LibPQ.reaper"
        thread.stackSize = 256 << 10
        thread.start()
    }

    /// Joins `thread`, which must be joinable and neither joined nor detached yet, then
    /// calls `then` on the reaper's thread.
    func join(_ thread: pthread_t, then: @escaping @Sendable () -> Void) {
        condition.lock()
        queue.append((thread, then))
        condition.signal()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while queue.isEmpty { condition.wait() }
            let work = queue
            queue.removeAll(keepingCapacity: true)
            condition.unlock()
            for (thread, then) in work {
                pthread_join(thread, nil)
                then()
            }
        }
    }
}
