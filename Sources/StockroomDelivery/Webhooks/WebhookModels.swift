public import Foundation

/// A receiver of events over HTTP (migration 0009). Its secret is never part of it: it
/// is shown once, when the endpoint is created.
public struct WebhookEndpoint: Sendable, Equatable, Encodable {
    public var id: Int64
    public var url: String
    /// Redis-style globs over event types (`order.*`).
    public var events: [String]
    public var description: String
    public var createdAt: Date
    /// Set when deliveries stopped: a 410 Gone, or too many dead deliveries in a row.
    public var disabledAt: Date?
    public var disabledReason: String?
    public var consecutiveDead: Int

    enum CodingKeys: String, CodingKey { case id, url, events, description, createdAt, disabledAt, disabledReason, consecutiveDead }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(url, forKey: .url)
        try container.encode(events, forKey: .events)
        try container.encode(description, forKey: .description)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(disabledAt, forKey: .disabledAt)  // null, not absent
        try container.encode(disabledReason, forKey: .disabledReason)
        try container.encode(consecutiveDead, forKey: .consecutiveDead)
    }
}

/// One event on its way to one endpoint, with every attempt made so far.
public struct WebhookDelivery: Sendable, Equatable, Encodable {
    public enum State: String, Sendable, Encodable { case pending, delivered, dead }

    public var id: Int64
    public var endpointID: Int64
    public var eventID: Int64
    public var state: State
    public var attemptCount: Int
    /// When it is tried next, while pending.
    public var nextAttemptAt: Date?
    public var lastStatus: Int?
    public var lastError: String?
    public var createdAt: Date
    public var deliveredAt: Date?
    /// Oldest first.
    public var attempts: [WebhookAttempt]

    enum CodingKeys: String, CodingKey { case id, endpointId, eventId, state, attemptCount, nextAttemptAt, lastStatus, lastError, createdAt, deliveredAt, attempts }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(endpointID, forKey: .endpointId)
        try container.encode(eventID, forKey: .eventId)
        try container.encode(state, forKey: .state)
        try container.encode(attemptCount, forKey: .attemptCount)
        try container.encode(nextAttemptAt, forKey: .nextAttemptAt)
        try container.encode(lastStatus, forKey: .lastStatus)
        try container.encode(lastError, forKey: .lastError)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(deliveredAt, forKey: .deliveredAt)
        try container.encode(attempts, forKey: .attempts)
    }
}

/// One HTTP request made for a delivery.
public struct WebhookAttempt: Sendable, Equatable, Encodable {
    public var startedAt: Date
    /// nil when no response came (refused, timed out).
    public var statusCode: Int?
    public var latencyMs: Int
    public var error: String?

    public init(startedAt: Date, statusCode: Int?, latencyMs: Int, error: String?) {
        self.startedAt = startedAt
        self.statusCode = statusCode
        self.latencyMs = latencyMs
        self.error = error
    }

    enum CodingKeys: String, CodingKey { case startedAt, statusCode, latencyMs, error }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(startedAt, forKey: .startedAt)
        try container.encode(statusCode, forKey: .statusCode)
        try container.encode(latencyMs, forKey: .latencyMs)
        try container.encode(error, forKey: .error)
    }
}
