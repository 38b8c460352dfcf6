/// Read-your-writes over standbys, decided without I/O: whether a client that last wrote
/// at some instant may read from the standbys now, or must read from the primary.
///
/// Fed by `ReplicaTracker`'s polls: the primary's WAL position (`pg_current_wal_lsn()`),
/// each sample stamped with the instant its query was *sent*, and each standby's replay
/// position (`pg_last_wal_replay_lsn()`). A write acknowledged at instant W committed at
/// or below the position of any primary sample sent after W. So once every standby heard
/// from lately has replayed past the first such sample, the write is visible on all of
/// them. Until then the client reads from the primary — also when no sample after W has
/// come yet, or no standby has been heard from: in doubt, the primary.
struct ReplicaProgress: Sendable {
    struct Sample: Sendable, Equatable {
        let sentAt: ContinuousClock.Instant
        let lsn: UInt64
    }

    /// Primary samples kept: at the poll interval (10 ms) about five seconds' worth.
    static let maxSamples = 512
    /// A standby not heard from for this long no longer counts, for better (it may be
    /// gone) or worse (reads stop going to standbys when none is heard from).
    var window: Duration = .seconds(2)

    private(set) var samples: [Sample] = []
    private var standbys: [String: (lsn: UInt64?, heardAt: ContinuousClock.Instant)] = [:]

    init(window: Duration = .seconds(2)) { self.window = window }

    mutating func primary(lsn: UInt64, sentAt: ContinuousClock.Instant) {
        // Out-of-order answers (two polls overlapping) would break the binary search.
        if let last = samples.last, last.sentAt >= sentAt || last.lsn > lsn { return }
        samples.append(Sample(sentAt: sentAt, lsn: lsn))
        if samples.count > Self.maxSamples { samples.removeFirst(samples.count - Self.maxSamples) }
    }

    /// A standby's replay position; nil when `server` is not in recovery (a read pool
    /// that fell back to a primary): it has everything.
    mutating func standby(_ server: String, replayed lsn: UInt64?, heardAt: ContinuousClock.Instant) {
        standbys[server] = (lsn, heardAt)
    }

    /// The lowest position replayed by the standbys heard from within `window`: nil when
    /// none was heard from, `.max` when all of those were primaries.
    func replayedEverywhere(now: ContinuousClock.Instant) -> UInt64? {
        var lowest: UInt64?
        for (_, standby) in standbys where now - standby.heardAt <= window {
            lowest = min(lowest ?? .max, standby.lsn ?? .max)
        }
        return lowest
    }

    /// Whether reads may go to the standbys for a client whose last write was
    /// acknowledged at `lastWrite` (nil: it never wrote).
    func standbysMayServe(lastWrite: ContinuousClock.Instant?, now: ContinuousClock.Instant) -> Bool {
        guard let replayed = replayedEverywhere(now: now) else { return false }
        guard let lastWrite else { return true }
        guard let fence = firstSample(sentAfter: lastWrite) else { return false }
        return replayed >= fence.lsn
    }

    /// How far the slowest standby is behind the primary's latest sample, in bytes of WAL.
    func lagBytes(now: ContinuousClock.Instant) -> UInt64? {
        guard let replayed = replayedEverywhere(now: now), let latest = samples.last else { return nil }
        return latest.lsn > replayed ? latest.lsn - replayed : 0
    }

    private func firstSample(sentAfter instant: ContinuousClock.Instant) -> Sample? {
        var low = 0, high = samples.count
        while low < high {
            let middle = (low + high) / 2
            if samples[middle].sentAt > instant { high = middle } else { low = middle + 1 }
        }
        return low < samples.count ? samples[low] : nil
    }

    /// `pg_lsn` text (`16/B374D848`) as a number.
    static func lsn(_ text: String) -> UInt64? {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let high = UInt64(parts[0], radix: 16), let low = UInt64(parts[1], radix: 16),
              high <= UInt32.max, low <= UInt32.max else { return nil }
        return high << 32 | low
    }
}
