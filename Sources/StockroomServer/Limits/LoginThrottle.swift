import Foundation
import Stockroom
import Synchronization

/// Slows down and caps password guessing, whichever connections it comes from.
///
/// - Per email (in `Email.normalized` form, so `" Ann@x"` and `"ann@x "` are one
///   counter): every attempt counts as a failure from the moment it starts, so parallel
///   attempts count too; a success clears the count. Past a few failures each attempt
///   waits longer (up to a few seconds) before the password is even checked.
/// - Per client address: failed logins and registrations each draw from a token bucket;
///   an empty bucket refuses at once, before any password is hashed.
///
/// Memory is bounded: emails are kept as a 64-bit keyed hash (whatever their length), and
/// each table holds a fixed number of keys, the least recently used making room for a
/// new one. A flood of junk emails therefore evicts old counters one at a time; it never
/// wipes a counter that is being used.
final class LoginThrottle: Sendable {
    struct Limits: Sendable {
        /// Failures per email before attempts are slowed down.
        var freeFailures = 3
        /// A failure count older than this is forgotten.
        var forgetAfter: Duration = .seconds(900)
        /// Emails and addresses remembered, each.
        var capacity = 10_000
        /// Failed logins per address: a burst, then one more per `failedLoginRefill`.
        var failedLoginBurst = 60
        var failedLoginRefill: Duration = .seconds(1)
        /// Registrations per address: a burst, then one more per `registrationRefill`.
        var registrationBurst = 20
        var registrationRefill: Duration = .seconds(6)
    }

    private struct Failures { var count: Int; var last: ContinuousClock.Instant }

    let limits: Limits
    /// Keyed by a hash of the normalized email: an email a megabyte long costs 8 bytes.
    private let emails: Mutex<LRUCache<Int, Failures>>
    private let failedLogins: Mutex<LRUCache<String, TokenBucket>>
    private let registrations: Mutex<LRUCache<String, TokenBucket>>

    init(limits: Limits = Limits()) {
        self.limits = limits
        emails = Mutex(LRUCache(capacity: limits.capacity))
        failedLogins = Mutex(LRUCache(capacity: limits.capacity))
        registrations = Mutex(LRUCache(capacity: limits.capacity))
    }

    enum Decision: Equatable {
        /// Check the password after this delay (zero: at once).
        case proceed(after: Duration)
        /// Too many failures from this address: refuse without checking.
        case refused
    }

    /// Called before a login checks its password: counts the attempt against the email
    /// and the address, and says whether and when to go on. `sharedFailures`: the email's
    /// failures as every instance counted them (the database's count, migration 0011);
    /// the slowdown follows the larger of it and this instance's own count.
    func attempt(email: String, address: String?, sharedFailures: Int = 0, now: ContinuousClock.Instant = .now) -> Decision {
        if let address {
            let allowed = failedLogins.withLock { table in
                var bucket = table.get(address) ?? TokenBucket(burst: limits.failedLoginBurst, refill: limits.failedLoginRefill, now: now)
                defer { table.set(address, bucket) }
                return bucket.take(now: now)
            }
            guard allowed else { return .refused }
        }
        let key = Self.key(email)
        let before = emails.withLock { table in
            var entry = table.get(key) ?? Failures(count: 0, last: now)
            if now - entry.last >= limits.forgetAfter { entry.count = 0 }
            let before = entry.count
            entry.count += 1
            entry.last = now
            table.set(key, entry)
            return before
        }
        let failures = max(before, sharedFailures)
        guard failures >= limits.freeFailures else { return .proceed(after: .zero) }
        let steps = min(failures - limits.freeFailures, 4)
        return .proceed(after: .milliseconds(250 << steps))  // 250 ms, 500 ms, … 4 s
    }

    /// The login succeeded: its attempt was no failure.
    func succeeded(email: String, address: String?, now: ContinuousClock.Instant = .now) {
        emails.withLock { $0.remove(Self.key(email)) }
        if let address {
            failedLogins.withLock { table in
                if var bucket = table.get(address) {
                    bucket.giveBack(now: now)
                    table.set(address, bucket)
                }
            }
        }
    }

    /// Called before a registration: false when this address registered too many lately.
    func mayRegister(address: String?, now: ContinuousClock.Instant = .now) -> Bool {
        guard let address else { return true }
        return registrations.withLock { table in
            var bucket = table.get(address) ?? TokenBucket(burst: limits.registrationBurst, refill: limits.registrationRefill, now: now)
            defer { table.set(address, bucket) }
            return bucket.take(now: now)
        }
    }

    /// Failures counted for `email` now, for tests and INFO.
    func failures(email: String) -> Int {
        emails.withLock { $0.get(Self.key(email))?.count ?? 0 }
    }

    private static func key(_ email: String) -> Int {
        // Hasher is seeded per process: a client cannot aim collisions at a victim's key.
        Email.normalized(email).hashValue
    }
}

/// Up to `burst` tokens, one more every `refill`.
struct TokenBucket: Sendable {
    let burst: Int
    let refill: Duration
    private var tokens: Double
    private var updated: ContinuousClock.Instant

    init(burst: Int, refill: Duration, now: ContinuousClock.Instant) {
        self.burst = burst
        self.refill = refill
        self.tokens = Double(burst)
        self.updated = now
    }

    /// Takes a token if there is one.
    mutating func take(now: ContinuousClock.Instant) -> Bool {
        top(now: now)
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    mutating func giveBack(now: ContinuousClock.Instant) {
        top(now: now)
        tokens = min(Double(burst), tokens + 1)
    }

    private mutating func top(now: ContinuousClock.Instant) {
        let earned = (now - updated) / refill
        tokens = min(Double(burst), tokens + max(0, earned))
        updated = now
    }
}
