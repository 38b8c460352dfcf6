import Foundation
import Synchronization
import Testing
@testable import Stockroom

@Suite("Order admission: the rules (no I/O)")
struct AdmissionQueueTests {
    /// Waiters are names; deadlines are plain numbers.
    typealias Queue = AdmissionQueue<String, Int>

    private func state(_ entry: Queue.Entry) -> String {
        switch entry {
        case .admitted: "admitted"
        case .queued: "queued"
        case .refused: "refused"
        }
    }

    @Test func upToTheLimitGoInThenTheyWaitInOrderThenTheyAreRefused() {
        var queue = Queue(limit: 2, maxWaiting: 2)
        #expect(state(queue.enter(1, "a", deadline: 10)) == "admitted")
        #expect(state(queue.enter(2, "b", deadline: 10)) == "admitted")
        #expect(state(queue.enter(3, "c", deadline: 11)) == "queued")
        #expect(state(queue.enter(4, "d", deadline: 12)) == "queued")
        #expect(state(queue.enter(5, "e", deadline: 13)) == "refused")
        #expect(queue.inside == 2 && queue.waiting == 2)
        // Each leaving hands its place to the oldest waiter.
        #expect(queue.leave() == "c")
        #expect(queue.leave() == "d")
        #expect(queue.inside == 2 && queue.waiting == 0)
        #expect(queue.leave() == nil)
        #expect(queue.leave() == nil)
        #expect(queue.inside == 0)
    }

    @Test func aNewcomerDoesNotOvertakeTheLineEvenWhenAPlaceIsFree() {
        var queue = Queue(limit: 1, maxWaiting: 4)
        #expect(state(queue.enter(1, "a", deadline: 0)) == "admitted")
        #expect(state(queue.enter(2, "b", deadline: 0)) == "queued")
        #expect(queue.leave() == "b")  // b takes a's place
        #expect(state(queue.enter(3, "c", deadline: 0)) == "queued")
    }

    @Test func waitersPastTheirDeadlineLeaveTheLineAndOthersKeepTheirTurn() {
        var queue = Queue(limit: 1, maxWaiting: 8)
        _ = queue.enter(1, "a", deadline: 0)
        _ = queue.enter(2, "b", deadline: 5)
        _ = queue.enter(3, "c", deadline: 6)
        _ = queue.enter(4, "d", deadline: 9)
        #expect(queue.expire(before: 5) == [])
        #expect(queue.expire(before: 7) == ["b", "c"])
        #expect(queue.waiting == 1)
        #expect(queue.leave() == "d")
    }

    @Test func aCancelledWaiterLeavesTheLineOnce() {
        var queue = Queue(limit: 1, maxWaiting: 8)
        _ = queue.enter(1, "a", deadline: 0)
        _ = queue.enter(2, "b", deadline: 0)
        _ = queue.enter(3, "c", deadline: 0)
        #expect(queue.abandon(2) == "b")
        #expect(queue.abandon(2) == nil)
        #expect(queue.abandon(1) == nil, "a is inside, not waiting")
        #expect(queue.leave() == "c")
    }
}

@Suite("Order admission: the gate")
struct AdmissionGateTests {
    @Test func neverMoreThanTheLimitRunAtOnceAndEveryoneRuns() async throws {
        let gate = AdmissionGate(limit: 3, maxWaiting: 100, timeout: .seconds(30))
        let counts = Counts()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<40 {
                group.addTask {
                    try await gate.run {
                        counts.state.withLock { state in
                            state.running += 1
                            state.most = max(state.most, state.running)
                        }
                        try await Task.sleep(for: .milliseconds(5))
                        counts.state.withLock { $0.running -= 1; $0.done += 1 }
                    }
                }
            }
            try await group.waitForAll()
        }
        let (most, done) = counts.state.withLock { ($0.most, $0.done) }
        #expect(most == 3)
        #expect(done == 40)
        #expect(gate.statistics.inside == 0)
        #expect(gate.statistics.waiting == 0)
    }

    /// Takes the gate's only place until the returned function is called; that function
    /// returns once the holder has left.
    static func occupy(_ gate: AdmissionGate) async throws -> @Sendable () async throws -> Void {
        let release = AsyncStream<Void>.makeStream()
        let holder = Task { try await gate.run { for await _ in release.stream { break } } }
        while gate.statistics.inside == 0 { try await Task.sleep(for: .milliseconds(5)) }
        return {
            release.continuation.yield()
            try await holder.value
        }
    }

    @Test func aFullLineIsRefusedAtOnceAndAWaitPastTheDeadlineFailsWithUnavailable() async throws {
        // A deadline far above the time anything takes here, even on a loaded machine:
        // "at once" is then told from "at the deadline" without a tight bound.
        let gate = AdmissionGate(limit: 1, maxWaiting: 1, timeout: .seconds(2), work: "exports")
        let free = try await Self.occupy(gate)
        let clock = ContinuousClock()
        let waiting = clock.now
        let waiter = Task { try await gate.run { "ran" } }
        while gate.statistics.waiting == 0 { try await Task.sleep(for: .milliseconds(5)) }
        // The line (one) is full: the next is refused without waiting.
        let asked = clock.now
        let refused = await #expect(throws: StockroomError.self) { try await gate.run { "ran" } }
        #expect(refused?.code == .unavailable)
        #expect(refused?.message == "too many exports waiting for the database; try again")
        #expect(clock.now - asked < .seconds(1), "refused at once, not at the deadline")
        // The waiter gives up at its deadline, without having run.
        let expired = await #expect(throws: StockroomError.self) { try await waiter.value }
        #expect(expired?.code == .unavailable)
        #expect(expired?.message == "waited 2.0 seconds behind other exports for the database; try again")
        #expect(clock.now - waiting >= .seconds(2))
        #expect(clock.now - waiting < .seconds(10))
        try await free()
        #expect(try await gate.run { "ran" } == "ran", "the place is free again")
    }

    @Test func aCancelledWaiterLeavesWithoutRunning() async throws {
        let gate = AdmissionGate(limit: 1, maxWaiting: 4, timeout: .seconds(30))
        let free = try await Self.occupy(gate)
        let counts = Counts()
        let waiter = Task { try await gate.run { counts.state.withLock { $0.done += 1 } } }
        while gate.statistics.waiting == 0 { try await Task.sleep(for: .milliseconds(5)) }
        waiter.cancel()
        await #expect(throws: CancellationError.self) { try await waiter.value }
        #expect(gate.statistics.waiting == 0)
        try await free()
        let done = counts.state.withLock { $0.done }
        #expect(done == 0)
        #expect(gate.statistics.inside == 0)
    }
}

private final class Counts: Sendable {
    let state = Mutex((running: 0, most: 0, done: 0))
}
