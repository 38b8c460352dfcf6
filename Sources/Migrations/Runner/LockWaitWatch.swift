import Foundation
import LibPQ
import Logging
import Synchronization

/// Watches one statement while it runs, to say who blocks it when it waits for a lock.
///
/// Once the statement has run for `threshold`, a task of its own asks the server, on a
/// second connection, every `interval`, whether the statement's session (`pid`) waits
/// for a lock and which sessions `pg_blocking_pids` says it waits for. The first time it
/// finds a wait it logs a warning naming them (unless told not to). The last blockers it
/// saw are handed back when the statement ends, for the error of a statement that gave
/// up on `lock_timeout`: by then the wait is over, and the server no longer says.
///
/// Made for short lock timeouts on a loaded server, where a new connection can take a
/// fifth of a second and one look as long: the connection is opened `connectLead`
/// before the first look is due (at once when that is sooner); the looks run on that
/// connection's own thread, never waiting for a turn on a busy cooperative pool; and a
/// look still under way when the statement gives up is waited for (a second at most),
/// since it may have seen the wait.
///
/// The rules it keeps:
/// - Cheap. A statement that ends before the connection is due costs a sleeping task
///   and nothing on the server. After it, one small query per `interval`, which calls
///   `pg_blocking_pids` (it briefly locks the lock manager) only while the session
///   really waits for a lock.
/// - Never in the statement's way. The watcher is cancelled, not awaited, when the
///   statement ends: a slow connect (libpq's connect is not cancellable) cannot delay
///   the migration. It closes the connection it opened itself. A look is not cancelled
///   halfway either: a cancel request would cost the server a connection.
/// - No blocking call on the cooperative pool: LibPQ runs each connection's calls on
///   that connection's own thread; this only awaits them.
/// - Never another session's query text: see `LockBlocker`.
struct LockWaitWatch: Sendable {
    enum Source: Sendable {
        /// A connection of the caller's, open for as long as it uses the watch (the
        /// rehearsal's, whose lock timeout is too short to connect first).
        case shared(PostgresConnection)
        /// A connection opened `connectLead` before the first look, closed when the
        /// statement ends.
        case connect(PostgresConnection.Configuration)

        var executor: (any TaskExecutor)? {
            if case .shared(let connection) = self { connection.executor } else { nil }
        }
    }

    /// How long before the first look a connection of its own is opened.
    static let connectLead: Duration = .milliseconds(250)

    /// The watched session's server process.
    let pid: Int32
    let threshold: Duration
    let interval: Duration
    let source: Source
    let logger: Logger
    /// Whether the first wait seen is logged as a warning (with `metadata`).
    let warns: Bool
    let metadata: Logger.Metadata

    /// For a runner whose statements have `lockTimeout`: the first look after a second or
    /// half the timeout, whichever is sooner, so that it comes before the timeout ends the
    /// wait; then a few looks per timeout, at most two a second.
    static func forRunner(pid: Int32, lockTimeout: Duration?, connectionString: String, logger: Logger, metadata: Logger.Metadata) -> LockWaitWatch {
        let threshold = min(.seconds(1), (lockTimeout ?? .seconds(2)) / 2)
        var configuration = PostgresConnection.Configuration(connectionString)
        // The watcher is worth nothing once the statement is over.
        configuration.connectTimeout = 2
        return LockWaitWatch(
            pid: pid, threshold: threshold, interval: max(.milliseconds(20), min(threshold / 2, .milliseconds(500))),
            source: .connect(configuration), logger: logger, warns: true, metadata: metadata)
    }

    /// Runs `body` — the statement — with the watcher beside it. Returns what it returned
    /// or threw, how long it ran, and the sessions that blocked it the last time the
    /// watcher looked (none when it never waited for a lock long enough to be seen).
    func observe<T>(
        isolation actor: isolated (any Actor)? = #isolation,
        _ body: () async throws -> T
    ) async -> (result: Result<T, any Error>, duration: Duration, blockers: [LockBlocker]) {
        let sighting = Sighting()
        let start = ContinuousClock.now
        let watcher = Task.detached(executorPreference: source.executor) { await self.watch(into: sighting, from: start) }
        let result: Result<T, any Error>
        do {
            result = .success(try await body())
        } catch {
            result = .failure(error)
        }
        let duration = ContinuousClock.now - start
        watcher.cancel()
        if case .failure(let error as PostgresError) = result, error.sqlState == .lockNotAvailable {
            return (result, duration, await sighting.settled(within: .seconds(1)))
        }
        return (result, duration, sighting.latest)
    }

    private func watch(into sighting: Sighting, from start: ContinuousClock.Instant) async {
        let connectAt = start + max(.zero, threshold - Self.connectLead)
        guard (try? await Task.sleep(until: connectAt)) != nil, let connection = await open() else { return }
        // On the watcher connection's own thread from here (a shared one's from the
        // start): on a busy machine, a wait for a turn on the cooperative pool would make
        // it look too late for a short lock timeout.
        await withTaskExecutorPreference(connection.executor) {
            await look(on: connection, from: start, into: sighting)
        }
        if case .connect = source { await connection.close() }
    }

    /// Looks every `interval` from `start + threshold` until cancelled.
    private func look(on connection: PostgresConnection, from start: ContinuousClock.Instant, into sighting: Sighting) async {
        guard (try? await Task.sleep(until: start + threshold)) != nil else { return }
        var warned = false
        let pid = self.pid
        repeat {
            sighting.startLook()
            // Not cancelled with the watcher: see the type's comment.
            let poll = Task(executorPreference: connection.executor) { try await Self.blockers(of: pid, on: connection) }
            let found = (try? await poll.value) ?? []
            sighting.endLook(found: found)
            if !found.isEmpty && warns && !warned {
                warned = true
                var metadata = self.metadata
                metadata["lock.waited"] = "\(ContinuousClock.now - start)"
                metadata["lock.blockers"] = "\(found.listed)"
                logger.warning("a migration statement waits for a lock", metadata: metadata)
            }
        } while (try? await Task.sleep(for: interval)) != nil
    }

    private func open() async -> PostgresConnection? {
        switch source {
        case .shared(let connection):
            return connection
        case .connect(let configuration):
            guard let connection = try? await PostgresConnection.connect(configuration, logger: logger) else { return nil }
            if Task.isCancelled {
                await connection.close()
                return nil
            }
            return connection
        }
    }

    /// Who `pid` waits for, when it waits for a lock; none otherwise. The set-returning
    /// call in FROM runs once, for the one row of `pid`, and only while it waits.
    static func blockers(of pid: Int32, on connection: PostgresConnection) async throws -> [LockBlocker] {
        let rows = try await connection.query("""
            SELECT a.pid, coalesce(nullif(a.application_name, ''), '-'), a.usename::text, a.state,
                   extract(epoch FROM clock_timestamp() - a.xact_start)::float8,
                   extract(epoch FROM clock_timestamp() - a.query_start)::float8
            FROM pg_catalog.pg_stat_activity w
            CROSS JOIN LATERAL unnest(pg_catalog.pg_blocking_pids(w.pid)) AS b(pid)
            JOIN pg_catalog.pg_stat_activity a ON a.pid = b.pid
            WHERE w.pid = \(pid) AND w.wait_event_type = 'Lock'
            ORDER BY a.xact_start NULLS LAST, a.pid
            """, timeout: .seconds(2))
        return try rows.map { row in
            LockBlocker(
                pid: try row[0, as: Int32.self], application: try row[1, as: String.self], user: try row[2, as: String?.self],
                state: try row[3, as: String?.self], transactionSeconds: try row[4, as: Double?.self], querySeconds: try row[5, as: Double?.self])
        }
    }
}

/// The blockers the watcher saw last, and whether it is looking right now: written by
/// its task, read by the statement's.
private final class Sighting: Sendable {
    private struct State {
        var blockers: [LockBlocker] = []
        var looking = false
    }

    private let state = Mutex(State())

    func startLook() {
        state.withLock { $0.looking = true }
    }

    /// Only sightings of a wait are kept: a look that finds none (the wait just ended)
    /// must not erase who caused it.
    func endLook(found: [LockBlocker]) {
        state.withLock { state in
            state.looking = false
            if !found.isEmpty { state.blockers = found }
        }
    }

    var latest: [LockBlocker] { state.withLock { $0.blockers } }

    /// `latest`, once a look under way has ended, or `limit` has passed.
    func settled(within limit: Duration) async -> [LockBlocker] {
        let deadline = ContinuousClock.now + limit
        while state.withLock({ $0.looking }) && ContinuousClock.now < deadline {
            guard (try? await Task.sleep(for: .milliseconds(5))) != nil else { break }
        }
        return latest
    }
}
