import Foundation
import LibPQ
public import Logging
import Metrics
public import Stockroom
import Synchronization

/// Runs the jobs the outbox writes (refunds, e-mails) through their handlers: leases due
/// jobs of the kinds it has a handler for, performs them with no transaction open, and
/// records each outcome — done, retried on the webhooks' schedule (5 s … 8 h, about 16
/// hours), or dead.
///
/// Woken by `NOTIFY stockroom_jobs` (the trigger that writes jobs sends it) and by a timer
/// set to the next retry that falls due. Any number of workers share the table: a job is
/// leased to one at a time, and one whose worker died is taken over when its lease
/// expires — then it may be performed twice, which the handlers make harmless (a
/// refund's idempotency key, an e-mail's stable Message-ID).
public final class JobWorker: Sendable {
    public struct Configuration: Sendable {
        public var retrySchedule = RetrySchedule.standard
        /// How long a leased job is kept from other workers: longer than any handler's
        /// deadline (SMTP's replies take up to 30 s each).
        public var lease: Duration = .seconds(300)
        /// Jobs performed at once.
        public var concurrency = 4
        /// The longest sleep without a wake-up, as a safety net for missed notifications.
        public var maxIdle: Duration = .seconds(30)
        /// Jobs nobody tried within this long of being written are dead (see
        /// `JobRepository.expireUntried`).
        public var maxUntriedAge: Duration = .seconds(24 * 3600)
        /// Done and dead jobs are deleted this long after they finished; zero keeps them.
        public var retention: Duration = .seconds(7 * 24 * 3600)

        public init() {}
    }

    public let configuration: Configuration
    private let handlers: [Job.Kind: any JobHandler]
    private let jobs: JobRepository
    private let stockroom: Stockroom
    private let logger: Logger
    private let wakeup = Wakeup()
    private let stopping = Atomic<Bool>(false)
    private let name: String

    public init(stockroom: Stockroom, handlers: [any JobHandler], configuration: Configuration = Configuration(), logger: Logger) {
        var byKind: [Job.Kind: any JobHandler] = [:]
        for handler in handlers { for kind in handler.kinds { byKind[kind] = handler } }
        self.handlers = byKind
        self.stockroom = stockroom
        self.jobs = JobRepository(pool: stockroom.pool)
        self.configuration = configuration
        self.logger = logger
        self.name = "jobs-" + UUID().uuidString.prefix(8).lowercased()
    }

    public var kinds: Set<Job.Kind> { Set(handlers.keys) }

    public func poke() { wakeup.signal() }

    /// Lets jobs in progress finish, then makes `run()` return.
    public func stop() {
        stopping.store(true, ordering: .relaxed)
        wakeup.signal()
    }

    private var isStopping: Bool { stopping.load(ordering: .relaxed) || Task.isCancelled }

    public func run() async {
        guard !handlers.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.listen() }
            group.addTask { await self.housekeeping() }
            while !isStopping {
                let idle = await pass()
                if isStopping { break }
                await wakeup.wait(upTo: idle)
            }
            group.cancelAll()
        }
    }

    private func pass() async -> Duration {
        do {
            try await performDue()
            guard let due = try await jobs.secondsUntilNextDue(kinds: kinds) else { return configuration.maxIdle }
            return min(configuration.maxIdle, .milliseconds(Int64((due * 1000).rounded(.up)) + 1))
        } catch {
            logger.debug("jobs: a pass failed; trying again shortly", metadata: ["error": "\(error)"])
            return min(configuration.maxIdle, .seconds(1))
        }
    }

    private func performDue() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var inFlight = 0
            while !isStopping {
                let token = name + "-" + UUID().uuidString.prefix(8).lowercased()
                let claimed = try await jobs.claim(kinds: kinds, limit: configuration.concurrency - inFlight, lease: configuration.lease, leaseToken: token)
                for job in claimed { group.addTask { await self.perform(job, leaseToken: token) } }
                inFlight += claimed.count
                if inFlight == 0 { break }
                try await group.next()
                inFlight -= 1
            }
            try await group.waitForAll()
        }
    }

    private func perform(_ job: Job, leaseToken: String) async {
        guard let handler = handlers[job.kind] else { return }
        let outcome = await handler.perform(job)
        do {
            var recorded: JobState?
            _ = await persistently(patience: configuration.lease / 2, giveUp: { stopping.load(ordering: .relaxed) }) {
                recorded = try await jobs.record(job, leaseToken: leaseToken, outcome: outcome, schedule: configuration.retrySchedule)
            }
            guard let state = recorded else { throw StockroomError(.unavailable, "the outcome could not be recorded") }
            Counter(label: "stockroom.jobs", dimensions: [("kind", job.kind.rawValue), ("outcome", state.rawValue)]).increment()
            let metadata: Logger.Metadata = ["job.id": "\(job.id)", "job.kind": "\(job.kind.rawValue)", "order.id": "\(job.orderID)", "job.state": "\(state.rawValue)"]
            switch outcome {
            case .done: logger.debug("job done", metadata: metadata)
            case .retry(let error), .failed(let error):
                var metadata = metadata
                metadata["error"] = "\(error)"
                if state == .dead { logger.error("job dead", metadata: metadata) } else { logger.info("job failed; retrying later", metadata: metadata) }
            }
        } catch {
            // The lease expires and the job is performed again.
            logger.debug("jobs: an outcome failed to record", metadata: ["job.id": "\(job.id)", "error": "\(error)"])
        }
    }

    /// Hourly: expires jobs nobody took up, prunes finished ones and old processor events.
    private func housekeeping() async {
        while !Task.isCancelled {
            do {
                try await jobs.expireUntried(olderThan: Date().addingTimeInterval(-WebhookRepository.seconds(configuration.maxUntriedAge)))
                if configuration.retention > .zero {
                    let cutoff = Date().addingTimeInterval(-WebhookRepository.seconds(configuration.retention))
                    try await jobs.pruneFinished(before: cutoff)
                    try await stockroom.payments.pruneEvents(before: cutoff)
                }
            } catch {
                logger.debug("jobs: housekeeping failed; trying again later", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(3600))
        }
    }

    private func listen() async {
        await StockroomDelivery.listen(on: [JobRepository.channel], connection: stockroom.pool.configuration.connection, wakeup: wakeup, logger: logger)
    }
}
