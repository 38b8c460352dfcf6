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
    private(set) var queued: [Element] = []
    /// Workers holding a connection, running or parked.
    private(set) var workers = 0
    private var parked: Parked?
    private(set) var isShutDown = false

    init(maxWorkers: Int, maxBatch: Int, mayPark: Bool = true) {
        precondition(maxWorkers >= 1 && maxBatch >= 1)
        self.maxWorkers = maxWorkers
        self.maxBatch = maxBatch
        self.mayPark = mayPark
    }

    var hasParkedWorker: Bool { parked != nil }

    mutating func arrive(_ element: Element) -> Arrival {
        arrive(contentsOf: CollectionOfOne(element))
    }

    /// Lookups that arrived together — one read's pipelined commands — count as one
    /// arrival: the first of them does not start a worker on its own.
    mutating func arrive(contentsOf elements: some Collection<Element>) -> Arrival {
        guard !elements.isEmpty else { return .queued }
        queued.append(contentsOf: elements)
        if let worker = parked {
            parked = nil
            return .resume(worker, take())
        }
        guard workers == 0 || (workers < maxWorkers && queued.count >= maxBatch) else { return .queued }
        workers += 1
        return .start(take())
    }

    /// A worker finished a batch: the next one, or nil when nothing is queued.
    mutating func next() -> [Element]? {
        queued.isEmpty ? nil : take()
    }

    /// A worker found nothing queued (`next` returned nil) and offers to wait as `worker`.
    mutating func idle(_ worker: Parked) -> Idle {
        if !queued.isEmpty { return .run(take()) }
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
        guard !queued.isEmpty else { return nil }
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

    private mutating func take() -> [Element] {
        let count = min(maxBatch, queued.count)
        defer { queued.removeFirst(count) }
        return Array(queued.prefix(count))
    }
}
