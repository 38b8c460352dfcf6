public import Foundation
public import Stockroom

/// A webhook request's body and headers, per Standard Webhooks: the body is
/// `{"data":<event JSON>,"timestamp":<RFC 3339>,"type":<event type>}` (sorted keys, as
/// every reply), `data` the event exactly as EVENTS.READ shows it.
public struct WebhookMessage: Sendable, Equatable {
    /// `webhook-id`: the same for every attempt and every replay of one event, so a
    /// receiver can drop duplicates.
    public var id: String
    public var body: [UInt8]

    /// `eventJSON` is the event as clients see it (the server's EventJSON).
    public init(event: Event, eventJSON: String) {
        self.init(eventID: event.id, type: event.type, createdAt: event.createdAt, eventJSON: eventJSON)
    }

    public init(eventID: Int64, type: String, createdAt: Date, eventJSON: String) {
        id = Self.id(eventID: eventID)
        let type = String(decoding: (try? JSONEncoder().encode(type)) ?? Data("\"\"".utf8), as: UTF8.self)
        let timestamp = createdAt.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        body = Array("{\"data\":\(eventJSON),\"timestamp\":\"\(timestamp)\",\"type\":\(type)}".utf8)
    }

    public static func id(eventID: Int64) -> String { "evt_\(eventID)" }

    /// The request's headers for an attempt made at `timestamp` (unix seconds).
    public func headers(key: [UInt8], timestamp: Int64) -> [(String, String)] {
        [
            ("content-type", "application/json"),
            ("user-agent", "Stockroom-Webhooks/1"),
            ("webhook-id", id),
            ("webhook-timestamp", String(timestamp)),
            ("webhook-signature", WebhookSignature.sign(key: key, id: id, timestamp: timestamp, body: body)),
        ]
    }
}
