@testable import StockroomServer
import Synchronization
import Testing

/// `StockroomServer.wait(for:atMost:)`: the shutdown's wait on the delivery workers, which
/// must end at its patience or when the shutdown deadline cancels it, even when the task
/// waited on is stuck (a libpq call on a frozen database does not see cancellation).
@Suite struct ShutdownWaitTests {
    /// A task that ignores cancellation until `release` is called.
    static func stuckTask() -> (Task<Void, Never>, @Sendable () -> Void) {
        let gate = Mutex<CheckedContinuation<Void, Never>?>(nil)
        let released = Atomic<Bool>(false)
        let task = Task {
            await withCheckedContinuation { continuation in
                let resumeNow = gate.withLock { stored -> Bool in
                    if released.load(ordering: .relaxed) { return true }
                    stored = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
        let release: @Sendable () -> Void = {
            released.store(true, ordering: .relaxed)
            gate.withLock { $0.take() }?.resume()
        }
        return (task, release)
    }

    @Test func aStuckTaskIsWaitedOnForItsPatienceOnly() async {
        let (task, release) = Self.stuckTask()
        defer { release() }
        let started = ContinuousClock.now
        await StockroomServer.wait(for: task, atMost: .milliseconds(200))
        let took = ContinuousClock.now - started
        #expect(took >= .milliseconds(200) && took < .seconds(3))
    }

    @Test func cancellingTheWaiterEndsTheWaitAtOnce() async {
        let (task, release) = Self.stuckTask()
        defer { release() }
        let waiter = Task { await StockroomServer.wait(for: task, atMost: .seconds(60)) }
        try? await Task.sleep(for: .milliseconds(50))
        let started = ContinuousClock.now
        waiter.cancel()
        await waiter.value
        #expect(ContinuousClock.now - started < .seconds(2), "the shutdown deadline must not wait on a stuck worker")
    }

    @Test func aTaskThatEndsEndsTheWait() async {
        let (task, release) = Self.stuckTask()
        Task { try? await Task.sleep(for: .milliseconds(100)); release() }
        let started = ContinuousClock.now
        await StockroomServer.wait(for: task, atMost: .seconds(60))
        #expect(ContinuousClock.now - started < .seconds(5))
    }
}
