/// What follows from one attempt: decided from the response alone, without I/O.
public enum DeliveryDecision: Sendable, Equatable {
    /// A 2xx: done; the endpoint's dead streak starts over.
    case delivered
    /// A failure with tries left: the next one after this long.
    case retry(after: Duration)
    /// A failure after the last try: the delivery is dead and the endpoint's dead streak
    /// grows (it is disabled when the streak is long enough).
    case dead
    /// 410 Gone: the receiver wants no more; the endpoint is disabled at once.
    case gone
    /// The event was pruned before it could be sent: dead, without blame on the endpoint.
    case eventMissing

    /// `statusCode` is nil when no response came; `failedBefore` counts earlier attempts.
    public static func decide(statusCode: Int?, failedBefore: Int, schedule: RetrySchedule, random: Double = Double.random(in: 0..<1)) -> DeliveryDecision {
        if let statusCode, (200..<300).contains(statusCode) { return .delivered }
        if statusCode == 410 { return .gone }
        guard let delay = schedule.delay(afterFailedAttempts: failedBefore + 1, random: random) else { return .dead }
        return .retry(after: delay)
    }

    /// A metrics dimension: delivered, retry, dead, gone, event_missing.
    public var outcome: String {
        switch self {
        case .delivered: "delivered"
        case .retry: "retry"
        case .dead: "dead"
        case .gone: "gone"
        case .eventMissing: "event_missing"
        }
    }
}
