/// When a failed delivery is tried again: after the nth failure, the nth delay, less up
/// to `jitter` of it at random (so receivers that came back are not hit by every
/// endpoint's retries at once); after the last, no more tries — the delivery is dead.
public struct RetrySchedule: Sendable, Equatable {
    /// 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h: ten attempts over about 16 hours.
    public static let standard = RetrySchedule(delays: [
        .seconds(5), .seconds(30), .seconds(120), .seconds(600), .seconds(1800),
        .seconds(3600), .seconds(7200), .seconds(14_400), .seconds(28_800),
    ])

    public var delays: [Duration]
    /// The fraction of a delay that may be taken off at random, 0 to 1.
    public var jitter: Double

    public init(delays: [Duration], jitter: Double = 0.2) {
        self.delays = delays
        self.jitter = min(max(jitter, 0), 1)
    }

    /// Attempts in all, the first included.
    public var maxAttempts: Int { delays.count + 1 }

    /// The wait after `failedAttempts` failures (1 after the first), or nil when that was
    /// the last. `random` is in 0..<1.
    public func delay(afterFailedAttempts failedAttempts: Int, random: Double = Double.random(in: 0..<1)) -> Duration? {
        guard failedAttempts >= 1, failedAttempts <= delays.count else { return nil }
        let delay = delays[failedAttempts - 1]
        return delay - delay * (jitter * random)
    }
}
