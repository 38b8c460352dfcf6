import Foundation
import LibPQ
import Logging
import Stockroom
import Synchronization

/// Numbers the outbox's events and hands new ones to this instance's subscribers.
///
/// Numbering (`EventRepository.sequence`) runs when this instance's own commands may have
/// written events (`poke`, right after they commit), when another instance numbered some
/// (its NOTIFY on `stockroom_events`), and once a second for events written by anyone
/// else (psql, a library user). Runs start at least `runInterval` apart, and pokes that
/// arrive meanwhile coalesce into the next one, so a busy instance numbers in batches: a
/// run per order cost a third more CPU per order, in PostgreSQL and here.
///
/// Delivery to subscribers reads, after each run, the events past the last one handed
/// out, in id order, and gives each subscriber every one of them: the subscriber's
/// connection decides on its own event loop what its session may see and which of its
/// channels and patterns match. A subscriber that does not keep up is its connection's
/// problem (it is closed); the feed never waits for one.
final class EventFeed: Sendable {
    typealias Deliver = @Sendable ([(event: Event, json: String)]) -> Void

    private let events: EventRepository
    private let connection: PostgresConnection.Configuration
    private let retention: Duration
    private let logger: Logger
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>
    private let state = Mutex(State())

    private struct State {
        var subscribers: [Int: Deliver] = [:]
        /// The last event handed to subscribers; nil until the feed has started.
        var cursor: Int64?
        /// Numbering runs started and finished, and who waits for one to finish.
        var runsStarted = 0
        var runsFinished = 0
        var waiters: [(id: Int, run: Int, continuation: CheckedContinuation<Void, Never>)] = []
        var waiterIDs = 0
    }

    /// The shortest time from the start of one numbering run to the start of the next.
    static let runInterval: Duration = .milliseconds(20)

    init(events: EventRepository, connection: PostgresConnection.Configuration, retention: Duration, logger: Logger) {
        self.events = events
        self.connection = connection
        self.retention = retention
        self.logger = logger
        (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks for a numbering run soon: events may have committed.
    func poke() {
        wake.yield()
    }

    /// Returns once a numbering run that started after this call has finished (or after
    /// `limit`): every event committed before the call then has its id. Callers share
    /// runs, so a thousand readers cost one run, not a thousand turns at the counter's lock.
    func numbered(within limit: Duration = .seconds(2)) async {
        var timeout: Task<Void, Never>?
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let id = state.withLock { state -> Int in
                state.waiterIDs += 1
                state.waiters.append((state.waiterIDs, state.runsStarted + 1, continuation))
                return state.waiterIDs
            }
            timeout = Task {
                try? await Task.sleep(for: limit)
                self.state.withLock { state in
                    state.waiters.firstIndex { $0.id == id }.map { state.waiters.remove(at: $0).continuation }
                }?.resume()
            }
            poke()
        }
        timeout?.cancel()
    }

    func subscribe(_ id: Int, deliver: @escaping Deliver) {
        state.withLock { $0.subscribers[id] = deliver }
    }

    func unsubscribe(_ id: Int) {
        state.withLock { _ = $0.subscribers.removeValue(forKey: id) }
    }

    var subscriberCount: Int { state.withLock { $0.subscribers.count } }

    /// Numbering runs started so far.
    var runs: Int { state.withLock { $0.runsStarted } }

    /// Runs until cancelled.
    func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.listen() }
            group.addTask { await self.tick() }
            group.addTask { await self.pruneOldEvents() }
            group.addTask {
                for await _ in self.wakes {
                    if Task.isCancelled { break }
                    let started = ContinuousClock.now
                    await self.numberAndDeliver()
                    // Pokes that come in meanwhile wait for the pause to end, and then
                    // make one run.
                    try? await Task.sleep(until: started + Self.runInterval)
                }
            }
            await withTaskCancellationHandler {
                await group.next()
            } onCancel: {
                self.wake.finish()
            }
            group.cancelAll()
        }
    }

    private func numberAndDeliver() async {
        let run = state.withLock { state -> Int in
            state.runsStarted += 1
            return state.runsStarted
        }
        defer {
            let done = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.runsFinished = run
                let ready = state.waiters.filter { $0.run <= run }.map(\.continuation)
                state.waiters.removeAll { $0.run <= run }
                return ready
            }
            for continuation in done { continuation.resume() }
        }
        do {
            try await events.sequence()
            let start = state.withLock { $0.cursor }
            guard let start else {
                let last = try await events.lastID()
                state.withLock { $0.cursor = $0.cursor ?? last }
                return
            }
            var cursor = start
            while !Task.isCancelled {
                let subscribers = state.withLock { Array($0.subscribers.values) }
                guard !subscribers.isEmpty else {
                    // Nobody listens: skip ahead rather than read what no one wants.
                    let last = try await events.lastID()
                    state.withLock { $0.cursor = max($0.cursor ?? last, last) }
                    return
                }
                let batch = try await events.read(after: cursor, limit: 500, as: nil)
                guard let last = batch.last else { return }
                let written = batch.map { (event: $0, json: EventJSON.encode($0)) }
                for deliver in subscribers { deliver(written) }
                cursor = last.id
                state.withLock { $0.cursor = cursor }
                if batch.count < 500 { return }
            }
        } catch {
            logger.debug("events: numbering or reading failed; trying again shortly", metadata: ["error": "\(error)"])
        }
    }

    /// Wakes the feed when another instance numbered events.
    private func listen() async {
        while !Task.isCancelled {
            do {
                let listener = try await PostgresConnection.connect(connection, logger: logger)
                defer { Task { await listener.close() } }
                for try await _ in try await listener.notifications(on: EventRepository.channel) {
                    wake.yield()
                }
            } catch {
                logger.debug("events: listening failed; reconnecting", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// Catches events written by anyone but this instance's commands.
    private func tick() async {
        while !Task.isCancelled {
            wake.yield()
            try? await Task.sleep(for: .seconds(1))
        }
    }

    /// Deletes events older than the retention, hourly.
    private func pruneOldEvents() async {
        guard retention > .zero else { return }
        while !Task.isCancelled {
            let cutoff = Date().addingTimeInterval(-Double(retention.components.seconds))
            do {
                let pruned = try await events.prune(createdBefore: cutoff)
                if pruned > 0 { logger.info("pruned old events", metadata: ["events.pruned": "\(pruned)"]) }
            } catch {
                logger.debug("events: pruning failed; trying again later", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(3600))
        }
    }
}
