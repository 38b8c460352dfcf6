import Foundation
import Stockroom
import Synchronization

/// The logins held by live connections, and when each was last confirmed with the
/// database. A connection keeps its login only while it is confirmed: at most `interval`
/// after the last check, and never past its expiry. So a logout, a revocation, a
/// deactivation or a role change made anywhere — another connection, another instance,
/// an admin tool — reaches every connection within `interval`; one made through this
/// server reaches them at once (`forget`).
///
/// A check is one indexed query per token per `interval`, shared by every connection
/// holding that token, and only for tokens that are in use.
final class LiveSessions: Sendable {
    private struct Confirmed {
        let session: ActiveSession
        let at: ContinuousClock.Instant
    }

    let interval: Duration
    private let state = Mutex<(entries: [String: Confirmed], swept: ContinuousClock.Instant)>(([:], .now))

    init(interval: Duration) {
        self.interval = interval
    }

    /// The user of `token` as last confirmed, or nil when it needs confirming again
    /// (never confirmed, confirmed too long ago, expired or forgotten).
    func user(_ token: String, now: ContinuousClock.Instant = .now) -> User? {
        state.withLock { state in
            guard let entry = state.entries[token], now - entry.at < interval, entry.session.expiresAt > Date() else { return nil }
            return entry.session.user
        }
    }

    func confirm(_ token: String, _ session: ActiveSession, now: ContinuousClock.Instant = .now) {
        state.withLock { state in
            state.entries[token] = Confirmed(session: session, at: now)
            // Stale entries are as good as absent: drop them once per interval, so the
            // table holds about the tokens used within one interval.
            if now - state.swept >= interval {
                state.entries = state.entries.filter { now - $0.value.at < interval }
                state.swept = now
            }
        }
    }

    func forget(token: String) {
        _ = state.withLock { $0.entries.removeValue(forKey: token) }
    }

    func forget(userID: Int64) {
        state.withLock { state in state.entries = state.entries.filter { $0.value.session.user.id != userID } }
    }
}
