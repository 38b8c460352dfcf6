import LibPQ
import Metrics
import NIOCore
import Stockroom
import Synchronization

/// Merges concurrent product lookups — from many connections, and from one connection's
/// pipelined commands — into one statement per round trip.
///
/// Which lookups share a statement, and when workers start, park and retire, is
/// `LookupQueue`'s to say. A worker's body runs on its connection's own thread (see
/// `PostgresPool.withConnection`), so from one batch to the next nothing switches threads;
/// a parked worker is resumed on that thread by the lookup that wakes it. Results go back
/// to each caller's event loop, one task per loop per batch.
final class ProductLookupBatcher: Sendable {
    enum Key: Hashable, Sendable {
        case id(Int64)
        case sku(String)
    }

    /// Runs on the event loop given with the lookup.
    typealias Completion = @Sendable (Result<Product?, any Error>) -> Void

    struct Waiter: Sendable {
        let key: Key
        /// The client connection's id: lookups are taken fairly across connections.
        let connection: Int
        let loop: any EventLoop
        let completion: Completion
    }

    private typealias Queue = LookupQueue<Waiter, CheckedContinuation<[Waiter]?, Never>>

    /// Lookups served and statements run, for INFO: their ratio is the batching gained.
    let lookups = Atomic<Int>(0)
    let batches = Atomic<Int>(0)
    /// The same two for metrics (`stockroom.lookup.*`): the rate of one over the other is
    /// the lookups each statement served. Made once: each creation goes to the factory.
    private let lookupsCounter = Counter(label: "stockroom.lookup.lookups")
    private let batchesCounter = Counter(label: "stockroom.lookup.batches")
    /// Lookups queued for the next statement, for INFO: a backlog that grows means the
    /// database cannot keep up.
    var waiting: Int { state.withLock { $0.count } }
    /// Workers holding a connection, or waiting for one: the pool's share taken by lookups.
    var workers: Int { state.withLock { $0.workers } }

    private let products: ProductRepository
    private let pool: PostgresPool
    private let state: Mutex<Queue>

    init(products: ProductRepository, pool: PostgresPool, maxInFlight: Int, maxBatch: Int = 256, maxQueued: Int = 65_536) {
        self.products = products
        self.pool = pool
        // A second statement only once a full batch waits (see LookupQueue): against a
        // quarter of one, 8 clients with -P 16 ran half as many statements and 10-30%
        // more lookups; without pipelining, and at 64 and 1,000 clients, no slower.
        // A parked worker keeps its connection: only when another is left for the rest.
        let mayPark = pool.configuration.maxConnections > max(1, maxInFlight)
        self.state = Mutex(Queue(maxWorkers: max(1, maxInFlight), maxBatch: maxBatch, mayPark: mayPark, maxQueued: maxQueued, owner: \.connection))
    }

    /// Looks each waiter's product up and calls its completion on its loop with it, or
    /// with nil when there is none with that id or sku. The waiters count as one arrival
    /// (see `LookupQueue.arrive(contentsOf:)`). Callbacks rather than an async function:
    /// the connection handler calls this on its event loop and must not wait.
    func products(_ waiters: [Waiter]) {
        guard !waiters.isEmpty else { return }
        let (arrival, admitted) = state.withLock { queue in
            let admitted = min(queue.room, waiters.count)
            return (queue.arrive(contentsOf: waiters.prefix(admitted)), admitted)
        }
        if admitted < waiters.count {
            // Full: the database is far behind. Refused at once, rather than holding
            // more of every client's memory for lookups that would answer too late.
            let busy = StockroomError(.unavailable, "too many product lookups waiting; try again")
            deliver(waiters[admitted...].map { ($0, .failure(busy)) })
        }
        switch arrival {
        case .queued: break
        case .start(let batch): start(batch)
        case .resume(let worker, let batch): worker.resume(returning: batch)
        }
    }

    /// Sends the parked worker away, returning its connection, and keeps any from parking
    /// again: the pool can close once the lookups in flight are done.
    func shutDown() {
        state.withLock { $0.shutDown() }?.resume(returning: nil)
    }

    private func start(_ first: [Waiter]) {
        Task {
            var batch = first
            do {
                try await pool.withConnection { connection in
                    // Left to choose, PostgreSQL plans the lookup anew on every call: its
                    // custom plans (for arrays of known length) look cheaper than the
                    // generic one, which has the same shape. Planning cost more than
                    // the lookup itself — about a third of the backend's time. So the
                    // worker's connection uses generic plans while it runs lookups, and
                    // goes back to the pool as it came.
                    try await connection.query("SET plan_cache_mode = force_generic_plan")
                    do {
                        while true {
                            try await run(batch, on: connection)
                            if let next = state.withLock({ $0.next() }) {
                                batch = next
                            } else if let next = await parkOrRetire() {
                                batch = next
                            } else {
                                break
                            }
                        }
                    } catch {
                        _ = try? await connection.query("RESET plan_cache_mode")
                        throw error
                    }
                    // Retired already, its last batch answered: a failure here must fail
                    // no lookup. A connection that cannot even RESET is broken or closed,
                    // and the pool does not lend it again.
                    _ = try? await connection.query("RESET plan_cache_mode")
                }
            } catch {
                // No connection, or this one broke: this batch fails, and the worker
                // retires with its connection; a fresh one takes what is waiting.
                let error = StockroomError.mapping(error)
                deliver(batch.map { ($0, .failure(error)) })
                if let next = state.withLock({ $0.failed() }) { start(next) }
            }
        }
    }

    /// Waits, holding the connection, for the next lookup to hand over a batch; nil to
    /// retire.
    private func parkOrRetire() async -> [Waiter]? {
        await withCheckedContinuation { (continuation: CheckedContinuation<[Waiter]?, Never>) in
            switch state.withLock({ $0.idle(continuation) }) {
            case .run(let batch): continuation.resume(returning: batch)
            case .parked: break
            case .retire: continuation.resume(returning: nil)
            }
        }
    }

    /// Completes every waiter of `batch` when the statement succeeds; throws, leaving
    /// them to the caller, when it fails.
    private func run(_ batch: [Waiter], on connection: PostgresConnection) async throws {
        lookups.add(batch.count, ordering: .relaxed)
        batches.add(1, ordering: .relaxed)
        lookupsCounter.increment(by: batch.count)
        batchesCounter.increment()
        var ids: Set<Int64> = []
        var skus: Set<String> = []
        for waiter in batch {
            switch waiter.key {
            case .id(let id): ids.insert(id)
            case .sku(let sku): skus.insert(sku)
            }
        }
        var results: [Key: Result<Product?, any Error>] = [:]
        do {
            let found = try await products.products(ids: Array(ids), skus: Array(skus), on: connection)
            for product in found {
                results[.id(product.id)] = .success(product)
                results[.sku(product.sku)] = .success(product)
            }
        } catch where !connection.isBroken && ids.count + skus.count > 1 {
            // The statement failed, not the connection: something in one lookup that
            // validation let through. Each key alone, so the failure lands only on the
            // requests that caused it.
            for key in ids.map(Key.id) + skus.map(Key.sku) {
                results[key] = await lookUp(key, on: connection)
                if connection.isBroken { throw StockroomError(.unavailable, "the database connection broke") }
            }
        }
        deliver(batch.map { ($0, results[$0.key] ?? .success(nil)) })
    }

    private func lookUp(_ key: Key, on connection: PostgresConnection) async -> Result<Product?, any Error> {
        do {
            let found: [Product]
            switch key {
            case .id(let id): found = try await products.products(ids: [id], skus: [], on: connection)
            case .sku(let sku): found = try await products.products(ids: [], skus: [sku], on: connection)
            }
            return .success(found.first)
        } catch {
            return .failure(error)
        }
    }

    /// One task per event loop, not one per lookup: a batch's replies on one loop cost one
    /// hand-over, and their flushes coalesce.
    private func deliver(_ results: [(Waiter, Result<Product?, any Error>)]) {
        var byLoop: [(loop: any EventLoop, results: [(Completion, Result<Product?, any Error>)])] = []
        for (waiter, result) in results {
            if let index = byLoop.firstIndex(where: { $0.loop === waiter.loop }) {
                byLoop[index].results.append((waiter.completion, result))
            } else {
                // Room for the whole batch: grown one append at a time, a loop's list
                // reallocated some six times per batch.
                var group: [(Completion, Result<Product?, any Error>)] = []
                group.reserveCapacity(results.count)
                group.append((waiter.completion, result))
                byLoop.append((waiter.loop, group))
            }
        }
        for group in byLoop {
            let results = group.results
            group.loop.execute {
                for (completion, result) in results { completion(result) }
            }
        }
    }
}
