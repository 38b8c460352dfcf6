import LibPQ
import Logging
import Metrics
import Synchronization

/// Polls the primary's WAL position and the standbys' replay positions (through the read
/// pool) every `interval`, for `ReplicaProgress`. A poll is two tiny statements, one on
/// each side: at 10 ms, 100 a second each, whatever the traffic. A failed poll records
/// nothing, so that side's samples age out and reads go to the primary.
final class ReplicaTracker: Sendable {
    let primary: PostgresPool
    let standbys: PostgresPool
    let interval: Duration
    private let progress: Mutex<ReplicaProgress>
    private let logger: Logger

    init(primary: PostgresPool, standbys: PostgresPool, interval: Duration, window: Duration = .seconds(2), logger: Logger) {
        self.primary = primary
        self.standbys = standbys
        self.interval = interval
        self.progress = Mutex(ReplicaProgress(window: window))
        self.logger = logger
    }

    /// See `ReplicaProgress.standbysMayServe`.
    func standbysMayServe(lastWrite: ContinuousClock.Instant?) -> Bool {
        let now = ContinuousClock.now
        return progress.withLock { $0.standbysMayServe(lastWrite: lastWrite, now: now) }
    }

    func run() async {
        let lag = Gauge(label: "stockroom.replica.lag_bytes")
        while !Task.isCancelled {
            let sentAt = ContinuousClock.now
            async let primaryPosition = try? primary.query("SELECT pg_current_wal_lsn()::text", timeout: .seconds(1)).first?[0, as: String.self]
            async let standbyPosition = try? standbys.query(
                "SELECT pg_last_wal_replay_lsn()::text, coalesce(inet_server_addr()::text, 'local') || ':' || current_setting('port')", timeout: .seconds(1)
            ).first.map { (try $0[0, as: String?.self], try $0[1, as: String.self]) }
            let (position, standby) = await (primaryPosition, standbyPosition)
            let heardAt = ContinuousClock.now
            let bytes = progress.withLock { progress -> UInt64? in
                if let position, let lsn = ReplicaProgress.lsn(position) { progress.primary(lsn: lsn, sentAt: sentAt) }
                if let standby { progress.standby(standby.1, replayed: standby.0.flatMap(ReplicaProgress.lsn), heardAt: heardAt) }
                return progress.lagBytes(now: heardAt)
            }
            if let bytes { lag.record(Int64(clamping: bytes)) }
            try? await Task.sleep(for: interval)
        }
    }
}
