import AsyncHTTPClient
import Foundation
import LibPQ
public import Logging
import Metrics
import NIOCore
import NIOHTTP1
public import Stockroom
import Synchronization

/// Delivers events to webhook endpoints: fans new events out to the endpoints that want
/// them, leases due deliveries, POSTs them signed, and records every attempt.
///
/// Rules it keeps:
/// - At least once, in event order per endpoint: only an endpoint's oldest pending
///   delivery is leased (head-of-line), so at most one request per endpoint is in flight
///   across all workers while leases hold. A worker that dies leaves a lease that expires
///   after `lease`; the delivery is then sent again — receivers dedupe on `webhook-id`.
/// - No transaction is open during a request: leasing and recording are short
///   statements of their own.
/// - Woken by `NOTIFY stockroom_events` (new events) and `stockroom_webhooks` (replays),
///   and by a timer set to the next retry that falls due — never by polling. With
///   `sequencesEvents` (the standalone `stockroom worker`) it also numbers committed
///   events itself, on wake-ups and every `sequenceInterval`.
/// - `stop()` lets requests in progress finish and record, then `run()` returns.
///   Cancelling `run()` abandons them: their leases expire and they are sent again.
public final class WebhookWorker: Sendable {
    public struct Configuration: Sendable {
        public var retrySchedule = RetrySchedule.standard
        /// How long a leased delivery is kept from other workers.
        public var lease: Duration = .seconds(60)
        /// The deadline of one request, connecting included.
        public var requestTimeout: Duration = .seconds(10)
        /// An endpoint is disabled after this many dead deliveries in a row.
        public var disableAfterDeadDeliveries = 5
        /// Requests in flight at once (to different endpoints).
        public var concurrency = 16
        /// Whether to run the event sequencer too (when no `stockroom serve` does).
        public var sequencesEvents = false
        public var sequenceInterval: Duration = .seconds(1)
        /// The longest sleep without a wake-up, as a safety net for missed notifications.
        public var maxIdle: Duration = .seconds(30)
        /// Delivered and dead deliveries are deleted this long after they finished,
        /// hourly; zero keeps them.
        public var retention: Duration = .seconds(7 * 24 * 3600)

        public init() {}
    }

    /// The event as clients see it (the server passes `EventJSON.encode`).
    public typealias EncodeEvent = @Sendable (Event) -> String

    public let configuration: Configuration
    private let stockroom: Stockroom
    private let webhooks: WebhookRepository
    private let encode: EncodeEvent
    private let logger: Logger
    private let wakeup = Wakeup()
    private let stopping = Atomic<Bool>(false)
    private let passCount = Atomic<Int>(0)
    private let sending = Atomic<Int>(0)
    private let name: String

    public init(stockroom: Stockroom, configuration: Configuration = Configuration(), encode: @escaping EncodeEvent, logger: Logger) {
        self.stockroom = stockroom
        self.webhooks = WebhookRepository(pool: stockroom.pool)
        self.configuration = configuration
        self.encode = encode
        self.logger = logger
        self.name = "worker-" + UUID().uuidString.prefix(8).lowercased()
    }

    /// Asks for a pass soon: events may have been numbered.
    public func poke() { wakeup.signal() }

    /// Finishes the requests in progress, then makes `run()` return.
    public func stop() {
        stopping.store(true, ordering: .relaxed)
        wakeup.signal()
    }

    /// HTTP requests open right now: what a shutdown has reason to wait for.
    public var requestsInFlight: Int { sending.load(ordering: .relaxed) }

    /// Passes run so far (wake-ups), for tests that check the worker idles.
    package var passes: Int { passCount.load(ordering: .relaxed) }

    private var isStopping: Bool { stopping.load(ordering: .relaxed) || Task.isCancelled }

    /// Runs until `stop()` or cancellation.
    public func run() async {
        var http = HTTPClient.Configuration(redirectConfiguration: .disallow)
        http.timeout = .init(connect: Self.timeAmount(configuration.requestTimeout), read: Self.timeAmount(configuration.requestTimeout))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: http)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.listen() }
            group.addTask { await self.pruneFinishedDeliveries() }
            if configuration.sequencesEvents {
                group.addTask {
                    while !Task.isCancelled {
                        self.wakeup.signal()
                        try? await Task.sleep(for: self.configuration.sequenceInterval)
                    }
                }
            }
            while !isStopping {
                let idle = await pass(client)
                if isStopping { break }
                await wakeup.wait(upTo: idle)
            }
            group.cancelAll()
        }
        try? await client.shutdown()
    }

    /// Numbers (if asked), fans out, and sends what is due; returns how long to sleep.
    private func pass(_ client: HTTPClient) async -> Duration {
        passCount.add(1, ordering: .relaxed)
        do {
            if configuration.sequencesEvents { try await stockroom.events.sequence() }
            while try await webhooks.fanOut() == WebhookRepository.fanOutBatch, !isStopping {}
            try await sendDue(client)
            guard let due = try await webhooks.secondsUntilNextDue() else { return configuration.maxIdle }
            return min(configuration.maxIdle, .milliseconds(Int64((due * 1000).rounded(.up)) + 1))
        } catch {
            logger.debug("webhooks: a pass failed; trying again shortly", metadata: ["error": "\(error)"])
            return min(configuration.maxIdle, .seconds(1))
        }
    }

    /// Keeps up to `concurrency` requests in flight while deliveries are due: a slot
    /// that frees up is filled at once (a slow endpoint holds only its own slot), and
    /// an endpoint's next delivery becomes claimable as soon as the one before it ends.
    private func sendDue(_ client: HTTPClient) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var inFlight = 0
            while !isStopping {
                let claims = try await webhooks.claim(
                    limit: configuration.concurrency - inFlight, lease: configuration.lease,
                    leaseToken: name + "-" + UUID().uuidString.prefix(8).lowercased())
                for claim in claims { group.addTask { await self.deliver(claim, client) } }
                inFlight += claims.count
                if inFlight == 0 { break }
                // Wait for a slot, or for the only deliveries left to finish.
                try await group.next()
                inFlight -= 1
            }
            try await group.waitForAll()
        }
    }

    private func deliver(_ claim: WebhookRepository.Claim, _ client: HTTPClient) async {
        do {
            let found: [Event]
            do {
                found = try await stockroom.events.read(after: claim.eventID - 1, limit: 1, as: nil)
            } catch let error as StockroomError where [.unavailable, .timeout, .inDoubt].contains(error.code) {
                throw error
            } catch {
                // Not the database being away: an event that cannot be decoded would
                // hold its endpoint's queue for ever if left pending.
                let attempt = WebhookAttempt(startedAt: Date(), statusCode: nil, latencyMs: 0, error: "the event could not be read")
                try await webhooks.record(claim, attempt: attempt, decision: .eventMissing, disableAfterDeadDeliveries: configuration.disableAfterDeadDeliveries)
                logger.info("webhooks: an event could not be read; its delivery is dead", metadata: ["webhook.delivery": "\(claim.deliveryID)", "event.id": "\(claim.eventID)"])
                return
            }
            guard let event = found.first, event.id == claim.eventID else {
                let attempt = WebhookAttempt(startedAt: Date(), statusCode: nil, latencyMs: 0, error: "the event no longer exists (past its retention)")
                try await webhooks.record(claim, attempt: attempt, decision: .eventMissing, disableAfterDeadDeliveries: configuration.disableAfterDeadDeliveries)
                return
            }
            let message = WebhookMessage(event: event, eventJSON: encode(event))
            sending.add(1, ordering: .relaxed)
            let attempt = await send(message, claim: claim, client)
            sending.subtract(1, ordering: .relaxed)
            let decision = DeliveryDecision.decide(statusCode: attempt.statusCode, failedBefore: claim.attempts, schedule: configuration.retrySchedule)
            Counter(label: "stockroom.webhooks.attempts", dimensions: [("outcome", decision.outcome)]).increment()
            Metrics.Timer(label: "stockroom.webhooks.latency").recordMilliseconds(attempt.latencyMs)
            // Written while the lease holds (less a margin), through a database outage
            // if need be; given up on only when stopping.
            let recorded = await persistently(patience: configuration.lease / 2, giveUp: { stopping.load(ordering: .relaxed) }) {
                try await webhooks.record(claim, attempt: attempt, decision: decision, disableAfterDeadDeliveries: configuration.disableAfterDeadDeliveries)
            }
            guard recorded else {
                logger.debug("webhooks: an attempt could not be recorded; its lease will expire", metadata: ["webhook.delivery": "\(claim.deliveryID)"])
                return
            }
            logger.debug("webhook attempt", metadata: [
                "webhook.endpoint": "\(claim.endpointID)", "webhook.delivery": "\(claim.deliveryID)",
                "webhook.status": "\(attempt.statusCode.map(String.init) ?? "none")", "webhook.outcome": "\(decision)",
            ])
        } catch {
            // The lease expires and the delivery is tried again.
            logger.debug("webhooks: delivery failed to record", metadata: ["webhook.delivery": "\(claim.deliveryID)", "error": "\(error)"])
        }
    }

    /// One POST. Errors name what went wrong, never the secret or the signature.
    private func send(_ message: WebhookMessage, claim: WebhookRepository.Claim, _ client: HTTPClient) async -> WebhookAttempt {
        let started = Date()
        let clock = ContinuousClock.now
        var request = HTTPClientRequest(url: claim.url)
        request.method = .POST
        let key = WebhookSignature.key(fromSecret: claim.secret) ?? []
        for (name, value) in message.headers(key: key, timestamp: Int64(started.timeIntervalSince1970)) { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: message.body))
        var status: Int?
        var failure: String?
        do {
            let response = try await client.execute(request, timeout: Self.timeAmount(configuration.requestTimeout))
            status = Int(response.status.code)
            // Read (and drop) what the receiver says, up to a bound, so the connection
            // can be reused; a longer answer does not change the outcome.
            _ = try? await response.body.collect(upTo: 64 * 1024)
            if !(200..<300).contains(Int(response.status.code)) { failure = "the receiver answered \(response.status.code)" }
        } catch {
            failure = Self.describe(error)
        }
        let elapsed = ContinuousClock.now - clock
        let ms = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
        return WebhookAttempt(startedAt: started, statusCode: status, latencyMs: ms, error: failure)
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout: return "timed out"
            default: return "request failed: \(error)"
            }
        }
        return "request failed: \(String(describing: error).prefix(300))"
    }

    /// Deletes finished deliveries past the retention, hourly. Any worker may; they do
    /// not conflict.
    private func pruneFinishedDeliveries() async {
        guard configuration.retention > .zero else { return }
        while !Task.isCancelled {
            let cutoff = Date().addingTimeInterval(-WebhookRepository.seconds(configuration.retention))
            do {
                let pruned = try await webhooks.pruneFinished(before: cutoff)
                if pruned > 0 { logger.info("pruned finished webhook deliveries", metadata: ["webhooks.pruned": "\(pruned)"]) }
            } catch {
                logger.debug("webhooks: pruning failed; trying again later", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(3600))
        }
    }

    /// Wakes the worker when events were numbered or deliveries queued, on any instance.
    private func listen() async {
        await StockroomDelivery.listen(on: [EventRepository.channel, WebhookRepository.channel], connection: stockroom.pool.configuration.connection, wakeup: wakeup, logger: logger)
    }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        .nanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}
