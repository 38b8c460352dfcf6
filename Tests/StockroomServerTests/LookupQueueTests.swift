import Testing
@testable import StockroomServer

@Suite("Lookup batching rules (no I/O)")
struct LookupQueueTests {
    /// Elements are lookup numbers; a parked worker is named by a string.
    typealias Queue = LookupQueue<Int, String>

    private func started(_ arrival: Queue.Arrival) -> [Int]? {
        if case .start(let batch) = arrival { return batch }
        return nil
    }

    private func isQueued(_ arrival: Queue.Arrival) -> Bool {
        if case .queued = arrival { return true }
        return false
    }

    @Test func aQuietServerStartsAWorkerAtOnceAndLaterLookupsWaitForItsNextBatch() {
        var queue = Queue(maxWorkers: 4, maxBatch: 16)
        #expect(started(queue.arrive(1)) == [1])
        #expect(isQueued(queue.arrive(2)))
        #expect(isQueued(queue.arrive(3)))
        #expect(queue.workers == 1)
        #expect(queue.next() == [2, 3])
        #expect(queue.next() == nil)
    }

    @Test func aSecondWorkerStartsOnlyOnceAFullBatchIsQueued() {
        var queue = Queue(maxWorkers: 2, maxBatch: 4)
        _ = queue.arrive(0)
        for n in 1...3 { #expect(isQueued(queue.arrive(n))) }
        #expect(started(queue.arrive(4)) == [1, 2, 3, 4], "four queued is a full batch")
        #expect(queue.workers == 2)
        for n in 5...12 { #expect(isQueued(queue.arrive(n)), "no third worker: at most two") }
        #expect(queue.workers == 2)
    }

    @Test func lookupsArrivingTogetherAreOneArrival() {
        var queue = Queue(maxWorkers: 2, maxBatch: 8)
        #expect(started(queue.arrive(contentsOf: [1, 2, 3])) == [1, 2, 3], "one worker takes them all")
        #expect(isQueued(queue.arrive(contentsOf: [4, 5, 6])))
        #expect(started(queue.arrive(contentsOf: Array(7...11))) == Array(4...11), "a full batch queued: a second worker")
        #expect(queue.workers == 2)
        #expect(isQueued(queue.arrive(contentsOf: Array(12...30))))
        #expect(queue.next() == Array(12...19), "at most maxBatch, in order")
        #expect(queue.next() == Array(20...27))
        #expect(queue.next() == Array(28...30))
        #expect(isQueued(queue.arrive(contentsOf: [Int]())) && queue.next() == nil, "an empty arrival changes nothing")
        var idle = Queue(maxWorkers: 2, maxBatch: 16)
        #expect(isQueued(idle.arrive(contentsOf: [Int]())) && idle.workers == 0, "not even on an idle queue")
    }

    @Test func batchesTakeAtMostMaxBatchInArrivalOrder() {
        var queue = Queue(maxWorkers: 1, maxBatch: 3)
        _ = queue.arrive(0)
        for n in 1...7 { _ = queue.arrive(n) }
        #expect(queue.next() == [1, 2, 3])
        #expect(queue.next() == [4, 5, 6])
        #expect(queue.next() == [7])
    }

    @Test func anIdleWorkerParksAndTheNextLookupGoesStraightToIt() {
        var queue = Queue(maxWorkers: 4, maxBatch: 16)
        _ = queue.arrive(1)
        #expect(queue.next() == nil)
        guard case .parked = queue.idle("first") else { Issue.record("expected to park"); return }
        #expect(queue.hasParkedWorker && queue.workers == 1)
        guard case .resume(let worker, let batch) = queue.arrive(2) else { Issue.record("expected the parked worker"); return }
        #expect(worker == "first" && batch == [2])
        #expect(!queue.hasParkedWorker && queue.workers == 1, "no new worker started")
    }

    @Test func onlyOneWorkerParksTheOthersRetire() {
        var queue = Queue(maxWorkers: 2, maxBatch: 1)
        _ = queue.arrive(0)
        #expect(started(queue.arrive(1)) == [1], "a full batch of one")
        guard case .parked = queue.idle("a") else { Issue.record("a should park"); return }
        guard case .retire = queue.idle("b") else { Issue.record("b should retire"); return }
        #expect(queue.workers == 1)
    }

    @Test func withoutAConnectionToSpareNoWorkerParks() {
        var queue = Queue(maxWorkers: 1, maxBatch: 4, mayPark: false)
        _ = queue.arrive(0)
        guard case .retire = queue.idle("a") else { Issue.record("it would hold the pool's last connection"); return }
        #expect(queue.workers == 0 && !queue.hasParkedWorker)
        #expect(started(queue.arrive(1)) == [1])
    }

    @Test func anIdleWorkerRunsWhatArrivedBeforeItCouldPark() {
        var queue = Queue(maxWorkers: 1, maxBatch: 4)
        _ = queue.arrive(0)
        _ = queue.arrive(1)
        guard case .run(let batch) = queue.idle("a") else { Issue.record("work was waiting"); return }
        #expect(batch == [1])
        #expect(!queue.hasParkedWorker)
    }

    @Test func aFailedWorkerIsReplacedOnlyWhenLookupsWait() {
        var queue = Queue(maxWorkers: 1, maxBatch: 4)
        _ = queue.arrive(0)
        _ = queue.arrive(1)
        #expect(queue.failed() == [1], "the waiting lookup gets a fresh worker")
        #expect(queue.workers == 1)
        #expect(queue.failed() == nil)
        #expect(queue.workers == 0)
        #expect(started(queue.arrive(2)) == [2], "the next lookup starts one again")
    }

    @Test func shutDownSendsTheParkedWorkerAwayAndNoneParksAgain() {
        var queue = Queue(maxWorkers: 2, maxBatch: 4)
        _ = queue.arrive(0)
        _ = queue.idle("a")
        #expect(queue.shutDown() == "a")
        #expect(queue.workers == 0 && queue.isShutDown)
        #expect(queue.shutDown() == nil)
        _ = queue.arrive(1)
        guard case .retire = queue.idle("b") else { Issue.record("nothing parks after shutDown"); return }
        #expect(queue.workers == 0)
    }
}
