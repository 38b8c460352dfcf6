import LibPQ
import Logging
import Metrics
import Stockroom

/// The gauges `/metrics` adds to the counters and timers recorded as requests run: what
/// the pool, the outbox and the subscribers look like right now.
///
/// In-memory values (the pool, subscribers) are read at every scrape. The outbox takes a
/// statement, so it is read by `sampleOutbox` on a timer — every few seconds however
/// often anyone scrapes — and a scrape shows the last sample. The gauges are made once,
/// at init, through the factory bound then (a test binds its own).
final class OperationsGauges: Sendable {
    private let pool: PostgresPool
    private let events: EventRepository
    private let subscribers: @Sendable () -> Int
    private let logger: Logger

    private let poolOpen = Gauge(label: "stockroom.pool.open")
    private let poolLeased = Gauge(label: "stockroom.pool.leased")
    private let poolWaiting = Gauge(label: "stockroom.pool.waiting")
    private let poolMax = Gauge(label: "stockroom.pool.max")
    private let subscriberGauge = Gauge(label: "stockroom.subscribers")
    private let outboxPending = Gauge(label: "stockroom.outbox.pending")
    private let outboxOldest = Gauge(label: "stockroom.outbox.oldest.seconds")

    init(pool: PostgresPool, events: EventRepository, subscribers: @escaping @Sendable () -> Int, logger: Logger) {
        self.pool = pool
        self.events = events
        self.subscribers = subscribers
        self.logger = logger
    }

    /// Records the values that cost nothing to read.
    func recordCheapValues() {
        let statistics = pool.statistics
        poolOpen.record(statistics.open)
        poolLeased.record(statistics.leased)
        poolWaiting.record(statistics.waiting)
        poolMax.record(pool.configuration.maxConnections)
        subscriberGauge.record(subscribers())
    }

    /// Reads the outbox's lag every `interval` until cancelled. A sample that fails or
    /// misses `deadline` leaves the last values: the gauges go stale rather than
    /// hold up a scrape, and the pool and `/readyz` say why.
    func sampleOutbox(every interval: Duration, deadline: Duration) async {
        let events = self.events
        while !Task.isCancelled {
            do {
                if let backlog = try await withDeadline(deadline, { try await events.backlog() }) {
                    outboxPending.record(backlog.count)
                    outboxOldest.record(backlog.oldestAge.map(Self.seconds) ?? 0)
                }
            } catch {
                logger.debug("could not read the outbox's lag", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
