import NIOCore

/// The state of `ProductLookupBatcher`: queued lookups and the workers that run them, as a
/// plain struct whose methods say what to do next, so that its rules are tested without a
/// database (`LookupQueueTests`).
///
/// A worker holds a pooled connection and runs one batch at a time. The rules:
/// - A lookup that finds no worker starts one at once: no added latency when it is quiet.
/// - Lookups that arrive while workers run wait for the next batch, which takes all of them
///   (up to `maxBatch`). A second worker starts only once a full batch is queued — when
///   one worker cannot keep up even with full batches — and at most `maxWorkers` run, so
///   batches grow with load instead of the number of round trips and of threads
///   competing for the cores.
/// - A worker that finds nothing queued parks, keeping its connection, if no other worker
///   is parked; the next lookup hands it a batch directly. Starting a worker costs a task,
///   a pool checkout and a hop onto the connection's thread; waking a parked one costs
///   one thread wakeup. Any other worker retires and returns its connection.
/// - Parking is off (`mayPark` false) when the pool has no connection to spare: a parked
///   worker holding the only one would starve every other command.
/// - After `shutDown` nothing parks, and the parked worker is sent away.
/// - Fair across connections: each connection's lookups wait in a line of their own, and
///   a batch takes one from each line in turn. A connection that pipelines ten thousand
///   lookups fills batches only when nobody else is waiting; another's single lookup
///   goes out in the next batch.
/// - Bounded: at most `maxQueued` lookups wait (`room`); the caller refuses the rest.
struct LookupQueue<Element, Parked> {
    enum Arrival {
        /// Queued: a running worker takes it with its next batch.
        case queued
        /// Start a worker with this batch.
        case start([Element])
        /// Hand this batch to the parked worker.
        case resume(Parked, [Element])
    }

    enum Idle {
        /// Work arrived meanwhile: run it.
        case run([Element])
        /// Wait to be resumed with a batch, or with nil to retire.
        case parked
        /// Return the connection and end.
        case retire
    }

    let maxWorkers: Int
    let maxBatch: Int
    let mayPark: Bool
    let maxQueued: Int
    /// The connection an element comes from.
    private let owner: (Element) -> Int
    /// Each connection's waiting lookups, oldest first, and the connections with any, in
    /// the order their turns come.
    private var lines: [Int: CircularBuffer<Element>] = [:]
    /// Lines emptied by a batch, kept for the next connections that queue: without pipelining
    /// every lookup empties its line, and making a new one was an allocation per lookup.
    private var spareLines: [CircularBuffer<Element>] = []
    private static var spareLinesKept: Int { 64 }
    /// A new CircularBuffer's capacity: a line grown past it (a pipelining client's) is
    /// not kept.
    private static var spareLineCapacity: Int { 16 }
    private var turns = CircularBuffer<Int>()
    /// Lookups waiting, over all connections.
    private(set) var count = 0
    /// Workers holding a connection, running or parked.
    private(set) var workers = 0
    private var parked: Parked?
    private(set) var isShutDown = false

    init(maxWorkers: Int, maxBatch: Int, mayPark: Bool = true, maxQueued: Int = 65_536, owner: @escaping (Element) -> Int) {
        precondition(maxWorkers >= 1 && maxBatch >= 1 && maxQueued >= 1)
        self.maxWorkers = maxWorkers
        self.maxBatch = maxBatch
        self.mayPark = mayPark
        self.maxQueued = maxQueued
        self.owner = owner
    }

    var hasParkedWorker: Bool { parked != nil }

    /// How many more lookups may wait.
    var room: Int { maxQueued - count }

    mutating func arrive(_ element: Element) -> Arrival {
        arrive(contentsOf: CollectionOfOne(element))
    }

    /// Lookups that arrived together — one read's pipelined commands — count as one
    /// arrival: the first of them does not start a worker on its own.
    mutating func arrive(contentsOf elements: some Collection<Element>) -> Arrival {
        guard !elements.isEmpty else { return .queued }
        precondition(elements.count <= room, "more lookups than the queue has room for")
        for element in elements {
            let key = owner(element)
            if lines[key] == nil {
                lines[key] = spareLines.popLast() ?? CircularBuffer()
                turns.append(key)
            }
            lines[key]!.append(element)
        }
        count += elements.count
        if let worker = parked {
            parked = nil
            return .resume(worker, take())
        }
        guard workers == 0 || (workers < maxWorkers && count >= maxBatch) else { return .queued }
        workers += 1
        return .start(take())
    }

    /// A worker finished a batch: the next one, or nil when nothing is queued.
    mutating func next() -> [Element]? {
        count == 0 ? nil : take()
    }

    /// A worker found nothing queued (`next` returned nil) and offers to wait as `worker`.
    mutating func idle(_ worker: Parked) -> Idle {
        if count > 0 { return .run(take()) }
        if mayPark, parked == nil, !isShutDown {
            parked = worker
            return .parked
        }
        workers -= 1
        return .retire
    }

    /// A worker's batch failed (no connection, or it broke): the worker is gone. Returns a
    /// batch for a fresh worker when lookups are waiting, so they are not stranded.
    mutating func failed() -> [Element]? {
        workers -= 1
        guard count > 0 else { return nil }
        workers += 1
        return take()
    }

    /// Nothing parks from now on; returns the parked worker, to be resumed with nil.
    mutating func shutDown() -> Parked? {
        isShutDown = true
        guard let worker = parked else { return nil }
        parked = nil
        workers -= 1
        return worker
    }

    /// Up to `maxBatch` lookups, the connections taking turns: each gets an equal share
    /// of the room left (at least one), in the order their turns come.
    private mutating func take() -> [Element] {
        var batch: [Element] = []
        batch.reserveCapacity(min(maxBatch, count))
        while batch.count < maxBatch, let key = turns.popFirst() {
            let share = max(1, (maxBatch - batch.count) / (turns.count + 1))
            let taken = min(share, lines[key]!.count)
            batch.append(contentsOf: lines[key]!.prefix(taken))
            lines[key]!.removeFirst(taken)
            if lines[key]!.isEmpty {
                let line = lines.removeValue(forKey: key)!
                if spareLines.count < Self.spareLinesKept, line.capacity <= Self.spareLineCapacity { spareLines.append(line) }
            } else {
                turns.append(key)
            }
        }
        count -= batch.count
        return batch
    }
}
