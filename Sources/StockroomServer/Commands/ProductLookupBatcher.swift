import Stockroom
import Synchronization

/// Merges concurrent product lookups — from many connections, and from one connection's
/// pipelined commands — into one statement per round trip.
///
/// Natural batching: a lookup that finds no batch running starts one at once (no added
/// latency when the server is quiet); lookups that arrive while batches are running wait
/// for the next, which takes all of them (up to `maxBatch`). At most `maxInFlight` batches
/// run at a time, so batches grow with load instead of the number of round trips.
final class ProductLookupBatcher: Sendable {
    enum Key: Hashable, Sendable {
        case id(Int64)
        case sku(String)
    }

    private struct Waiter {
        let key: Key
        let continuation: CheckedContinuation<Product?, any Error>
    }

    private struct State {
        var queue: [Waiter] = []
        var inFlight = 0
    }

    /// Lookups served and statements run, for INFO: their ratio is the batching gained.
    let lookups = Atomic<Int>(0)
    let batches = Atomic<Int>(0)

    private let products: ProductRepository
    private let maxInFlight: Int
    private let maxBatch: Int
    private let state = Mutex(State())

    init(products: ProductRepository, maxInFlight: Int, maxBatch: Int = 256) {
        self.products = products
        self.maxInFlight = max(1, maxInFlight)
        self.maxBatch = maxBatch
    }

    /// The product, or nil when there is none with that id or sku.
    func product(_ key: Key) async throws -> Product? {
        try await withCheckedThrowingContinuation { continuation in
            let batch = state.withLock { state -> [Waiter]? in
                state.queue.append(Waiter(key: key, continuation: continuation))
                guard state.inFlight < maxInFlight else { return nil }
                state.inFlight += 1
                return take(&state)
            }
            if let batch { start(batch) }
        }
    }

    private func take(_ state: inout State) -> [Waiter] {
        let count = min(maxBatch, state.queue.count)
        defer { state.queue.removeFirst(count) }
        return Array(state.queue.prefix(count))
    }

    private func start(_ first: [Waiter]) {
        Task {
            var batch = first
            while true {
                await run(batch)
                let next = state.withLock { state -> [Waiter]? in
                    guard !state.queue.isEmpty else {
                        state.inFlight -= 1
                        return nil
                    }
                    return take(&state)
                }
                guard let next else { return }
                batch = next
            }
        }
    }

    private func run(_ batch: [Waiter]) async {
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
        do {
            let found = try await products.products(ids: Array(ids), skus: Array(skus))
            var byID: [Int64: Product] = [:]
            var bySKU: [String: Product] = [:]
            for product in found {
                byID[product.id] = product
                bySKU[product.sku] = product
            }
            for waiter in batch {
                switch waiter.key {
                case .id(let id): waiter.continuation.resume(returning: byID[id])
                case .sku(let sku): waiter.continuation.resume(returning: bySKU[sku])
                }
            }
        } catch {
            for waiter in batch { waiter.continuation.resume(throwing: error) }
        }
    }
}
