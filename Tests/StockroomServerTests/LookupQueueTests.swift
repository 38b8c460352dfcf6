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
        var queue = Queue(maxWorkers: 4, maxBatch: 16, owner: { _ in 0 })
        #expect(started(queue.arrive(1)) == [1])
        #expect(isQueued(queue.arrive(2)))
        #expect(isQueued(queue.arrive(3)))
        #expect(queue.workers == 1)
        #expect(queue.next() == [2, 3])
        #expect(queue.next() == nil)
    }

    @Test func aSecondWorkerStartsOnlyOnceAFullBatchIsQueued() {
        var queue = Queue(maxWorkers: 2, maxBatch: 4, owner: { _ in 0 })
        _ = queue.arrive(0)
        for n in 1...3 { #expect(isQueued(queue.arrive(n))) }
        #expect(started(queue.arrive(4)) == [1, 2, 3, 4], "four queued is a full batch")
        #expect(queue.workers == 2)
        for n in 5...12 { #expect(isQueued(queue.arrive(n)), "no third worker: at most two") }
        #expect(queue.workers == 2)
    }

    @Test func lookupsArrivingTogetherAreOneArrival() {
        var queue = Queue(maxWorkers: 2, maxBatch: 8, owner: { _ in 0 })
        #expect(started(queue.arrive(contentsOf: [1, 2, 3])) == [1, 2, 3], "one worker takes them all")
        #expect(isQueued(queue.arrive(contentsOf: [4, 5, 6])))
        #expect(started(queue.arrive(contentsOf: Array(7...11))) == Array(4...11), "a full batch queued: a second worker")
        #expect(queue.workers == 2)
        #expect(isQueued(queue.arrive(contentsOf: Array(12...30))))
        #expect(queue.next() == Array(12...19), "at most maxBatch, in order")
        #expect(queue.next() == Array(20...27))
        #expect(queue.next() == Array(28...30))
        #expect(isQueued(queue.arrive(contentsOf: [Int]())) && queue.next() == nil, "an empty arrival changes nothing")
        var idle = Queue(maxWorkers: 2, maxBatch: 16, owner: { _ in 0 })
        #expect(isQueued(idle.arrive(contentsOf: [Int]())) && idle.workers == 0, "not even on an idle queue")
    }

    @Test func batchesTakeAtMostMaxBatchInArrivalOrder() {
        var queue = Queue(maxWorkers: 1, maxBatch: 3, owner: { _ in 0 })
        _ = queue.arrive(0)
        for n in 1...7 { _ = queue.arrive(n) }
        #expect(queue.next() == [1, 2, 3])
        #expect(queue.next() == [4, 5, 6])
        #expect(queue.next() == [7])
    }

    @Test func anIdleWorkerParksAndTheNextLookupGoesStraightToIt() {
        var queue = Queue(maxWorkers: 4, maxBatch: 16, owner: { _ in 0 })
        _ = queue.arrive(1)
        #expect(queue.next() == nil)
        guard case .parked = queue.idle("first") else { Issue.record("expected to park"); return }
        #expect(queue.hasParkedWorker && queue.workers == 1)
        guard case .resume(let worker, let batch) = queue.arrive(2) else { Issue.record("expected the parked worker"); return }
        #expect(worker == "first" && batch == [2])
        #expect(!queue.hasParkedWorker && queue.workers == 1, "no new worker started")
    }

    @Test func onlyOneWorkerParksTheOthersRetire() {
        var queue = Queue(maxWorkers: 2, maxBatch: 1, owner: { _ in 0 })
        _ = queue.arrive(0)
        #expect(started(queue.arrive(1)) == [1], "a full batch of one")
        guard case .parked = queue.idle("a") else { Issue.record("a should park"); return }
        guard case .retire = queue.idle("b") else { Issue.record("b should retire"); return }
        #expect(queue.workers == 1)
    }

    @Test func withoutAConnectionToSpareNoWorkerParks() {
        var queue = Queue(maxWorkers: 1, maxBatch: 4, mayPark: false, owner: { _ in 0 })
        _ = queue.arrive(0)
        guard case .retire = queue.idle("a") else { Issue.record("it would hold the pool's last connection"); return }
        #expect(queue.workers == 0 && !queue.hasParkedWorker)
        #expect(started(queue.arrive(1)) == [1])
    }

    @Test func anIdleWorkerRunsWhatArrivedBeforeItCouldPark() {
        var queue = Queue(maxWorkers: 1, maxBatch: 4, owner: { _ in 0 })
        _ = queue.arrive(0)
        _ = queue.arrive(1)
        guard case .run(let batch) = queue.idle("a") else { Issue.record("work was waiting"); return }
        #expect(batch == [1])
        #expect(!queue.hasParkedWorker)
    }

    @Test func aFailedWorkerIsReplacedOnlyWhenLookupsWait() {
        var queue = Queue(maxWorkers: 1, maxBatch: 4, owner: { _ in 0 })
        _ = queue.arrive(0)
        _ = queue.arrive(1)
        #expect(queue.failed() == [1], "the waiting lookup gets a fresh worker")
        #expect(queue.workers == 1)
        #expect(queue.failed() == nil)
        #expect(queue.workers == 0)
        #expect(started(queue.arrive(2)) == [2], "the next lookup starts one again")
    }

    @Test func shutDownSendsTheParkedWorkerAwayAndNoneParksAgain() {
        var queue = Queue(maxWorkers: 2, maxBatch: 4, owner: { _ in 0 })
        _ = queue.arrive(0)
        _ = queue.idle("a")
        #expect(queue.shutDown() == "a")
        #expect(queue.workers == 0 && queue.isShutDown)
        #expect(queue.shutDown() == nil)
        _ = queue.arrive(1)
        guard case .retire = queue.idle("b") else { Issue.record("nothing parks after shutDown"); return }
        #expect(queue.workers == 0)
    }

    /// Elements numbered by connection: 1000s are connection 1, 2000s connection 2.
    private func byConnection(maxWorkers: Int = 1, maxBatch: Int, maxQueued: Int = 65_536) -> Queue {
        Queue(maxWorkers: maxWorkers, maxBatch: maxBatch, maxQueued: maxQueued, owner: { $0 / 1000 })
    }

    @Test func oneConnectionsFloodDoesNotDelayAnothersLookupByMoreThanABatch() {
        var queue = byConnection(maxBatch: 4)
        _ = queue.arrive(0)  // a worker is busy
        _ = queue.arrive(contentsOf: Array(1000..<1010))
        _ = queue.arrive(2000)
        let next = queue.next()
        #expect(next?.contains(2000) == true, "the single lookup goes out in the next batch, not after the flood: \(String(describing: next))")
        #expect(next?.count == 4)
        #expect(queue.next() == [1003, 1004, 1005, 1006], "then the flood, in its own order")
    }

    @Test func connectionsShareABatchEvenly() {
        var queue = byConnection(maxBatch: 6)
        _ = queue.arrive(0)
        _ = queue.arrive(contentsOf: Array(1000..<1100))
        _ = queue.arrive(contentsOf: Array(2000..<2100))
        _ = queue.arrive(contentsOf: [3000])
        let batch = queue.next() ?? []
        let first = batch.filter { $0 / 1000 == 1 }.count, second = batch.filter { $0 / 1000 == 2 }.count
        #expect(batch.contains(3000) && first >= 2 && second >= 2 && abs(first - second) <= 1, "\(batch)")
        #expect(batch.count == 6)
        #expect(queue.count == 200 + 1 - 6)
    }

    /// Lines emptied by a batch are reused for the next connections that queue: over
    /// thousands of random arrivals and batches from 40 connections, every lookup goes out
    /// exactly once, and each connection's in the order it arrived.
    @Test func reusedLinesCarryNothingOver() {
        var queue = byConnection(maxBatch: 8)
        var generator = SystemRandomNumberGenerator()
        var sent: [Int: [Int]] = [:], delivered: [Int: [Int]] = [:]
        var nextNumber = 0
        func deliver(_ batch: [Int]?) {
            for lookup in batch ?? [] { delivered[lookup / 1000, default: []].append(lookup) }
        }
        for step in 0..<5000 {
            if step % 3 == 2 {
                deliver(queue.next())
                continue
            }
            let connection = Int.random(in: 0..<40, using: &generator)
            let count = Int.random(in: 1...(step % 50 == 0 ? 40 : 3), using: &generator)
            guard count <= queue.room else { continue }
            let lookups = (0..<count).map { _ in
                nextNumber += 1
                return connection * 1000 + nextNumber % 1000
            }
            sent[connection, default: []].append(contentsOf: lookups)
            switch queue.arrive(contentsOf: lookups) {
            case .start(let batch), .resume(_, let batch): deliver(batch)
            case .queued: break
            }
        }
        // Bounded: a lookup stranded in a line no turn leads to would loop here for ever.
        for _ in 0..<1000 {
            guard let batch = queue.next(), !batch.isEmpty else { break }
            deliver(batch)
        }
        #expect(queue.count == 0)
        #expect(delivered == sent)
    }

    @Test func theQueueHasRoomForMaxQueuedAndNoMore() {
        var queue = byConnection(maxBatch: 4, maxQueued: 10)
        _ = queue.arrive(0)  // taken at once by the first worker
        #expect(queue.room == 10)
        _ = queue.arrive(contentsOf: Array(1000..<1010))
        #expect(queue.room == 0)
        _ = queue.next()
        #expect(queue.room == 4, "room comes back as batches go out")
    }
}
