import LibPQ
import Stockroom
import Synchronization

/// Merges concurrent product lookups — from many connections, and from one connection's
/// pipelined commands — into one statement per round trip.
///
/// Natural batching: a lookup that finds no batch running starts one at once (no added
/// latency when the server is quiet); lookups that arrive while batches are running wait
/// for the next, which takes all of them (up to `maxBatch`). A second statement starts only
/// once a quarter of a batch is queued, and at most `maxInFlight` run at a time, so batches
/// grow with load instead of the number of round trips and of threads competing for cores.
final class ProductLookupBatcher: Sendable {
    enum Key: Hashable, Sendable {
        case id(Int64)
        case sku(String)
    }

    typealias Completion = @Sendable (Result<Product?, any Error>) -> Void

    private struct Waiter {
        let key: Key
        let completion: Completion
    }

    private struct State {
        var queue: [Waiter] = []
        var inFlight = 0
    }

    /// Lookups served and statements run, for INFO: their ratio is the batching gained.
    let lookups = Atomic<Int>(0)
    let batches = Atomic<Int>(0)

    private let products: ProductRepository
    private let pool: PostgresPool
    private let maxInFlight: Int
    private let maxBatch: Int
    private let state = Mutex(State())

    init(products: ProductRepository, pool: PostgresPool, maxInFlight: Int, maxBatch: Int = 256) {
        self.products = products
        self.pool = pool
        self.maxInFlight = max(1, maxInFlight)
        self.maxBatch = maxBatch
    }

    /// Looks the product up and calls `completion` — on whichever thread ran the batch —
    /// with it, or nil when there is none with that id or sku. A callback rather than an
    /// async function: the connection handler calls this on its event loop and must not
    /// wait.
    func product(_ key: Key, completion: @escaping Completion) {
        let batch = state.withLock { state -> [Waiter]? in
            state.queue.append(Waiter(key: key, completion: completion))
            // A second statement in flight only once lookups queue up: while the first
            // keeps up, waiting for it makes bigger batches, and fewer threads compete
            // for the cores.
            // (A quarter of a full batch: measured against 1, 8, 32 and 128 under
            // redis-benchmark with and without -P 16.)
            guard state.inFlight == 0 || (state.inFlight < maxInFlight && state.queue.count >= maxBatch / 4) else { return nil }
            state.inFlight += 1
            return take(&state)
        }
        if let batch { start(batch) }
    }

    private func take(_ state: inout State) -> [Waiter] {
        let count = min(maxBatch, state.queue.count)
        defer { state.queue.removeFirst(count) }
        return Array(state.queue.prefix(count))
    }

    /// A worker: takes a pooled connection and runs batches on it while lookups keep
    /// coming. Its body runs on the connection's own thread (see
    /// `PostgresPool.withConnection`), so from one batch to the next nothing switches
    /// threads; the replies go back to each client's event loop.
    private func start(_ first: [Waiter]) {
        Task {
            var batch = first
            do {
                try await pool.withConnection { connection in
                    while true {
                        try await run(batch, on: connection)
                        guard let next = nextBatchOrRetire() else { return }
                        batch = next
                    }
                }
            } catch {
                // No connection, or this one broke: this batch fails, and the worker
                // retires with its connection; the next lookup starts a fresh one.
                let error = StockroomError.mapping(error)
                for waiter in batch { waiter.completion(.failure(error)) }
                if let next = nextBatchOrRetire() { start(next) }
            }
        }
    }

    private func nextBatchOrRetire() -> [Waiter]? {
        state.withLock { state -> [Waiter]? in
            guard !state.queue.isEmpty else {
                state.inFlight -= 1
                return nil
            }
            return take(&state)
        }
    }

    /// Completes every waiter of `batch` when the statement succeeds; throws, leaving
    /// them to the caller, when it fails.
    private func run(_ batch: [Waiter], on connection: PostgresConnection) async throws {
        lookups.add(batch.count, ordering: .relaxed)
        batches.add(1, ordering: .relaxed)
        var ids: Set<Int64> = []
        var skus: Set<String> = []
        for waiter in batch {
            switch waiter.key {
            case .id(let id): ids.insert(id)
            case .sku(let sku): skus.insert(sku)
            }
        }
        let found = try await products.products(ids: Array(ids), skus: Array(skus), on: connection)
        var byID: [Int64: Product] = [:]
        var bySKU: [String: Product] = [:]
        for product in found {
            byID[product.id] = product
            bySKU[product.sku] = product
        }
        for waiter in batch {
            switch waiter.key {
            case .id(let id): waiter.completion(.success(byID[id]))
            case .sku(let sku): waiter.completion(.success(bySKU[sku]))
            }
        }
    }
}
