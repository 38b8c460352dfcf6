import Foundation
import Synchronization

/// Slows down repeated failed logins for one email, whichever connections they come
/// from: after a few failures each attempt waits longer (up to a few seconds) before the
/// password is even checked. Bounded: old entries are forgotten.
final class LoginThrottle: Sendable {
    private struct Entry { var failures: Int; var last: ContinuousClock.Instant }
    private let entries = Mutex<[String: Entry]>([:])
    private let freeFailures = 3
    private let forgetAfter: Duration = .seconds(900)
    private let capacity = 10_000

    /// How long to wait before checking a login for `email`.
    func delay(for email: String) -> Duration {
        let key = email.lowercased()
        return entries.withLock { entries in
            guard let entry = entries[key], ContinuousClock.now - entry.last < forgetAfter, entry.failures >= freeFailures else { return .zero }
            let steps = min(entry.failures - freeFailures, 4)
            return .milliseconds(250 << steps)  // 250 ms, 500 ms, … 4 s
        }
    }

    func failed(_ email: String) {
        let key = email.lowercased()
        entries.withLock { entries in
            let now = ContinuousClock.now
            if entries.count >= capacity {
                entries = entries.filter { now - $0.value.last < forgetAfter }
                if entries.count >= capacity { entries.removeAll() }
            }
            var entry = entries[key] ?? Entry(failures: 0, last: now)
            if now - entry.last >= forgetAfter { entry.failures = 0 }
            entry.failures += 1
            entry.last = now
            entries[key] = entry
        }
    }

    func succeeded(_ email: String) {
        _ = entries.withLock { $0.removeValue(forKey: email.lowercased()) }
    }
}
