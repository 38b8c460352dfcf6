import Foundation
import Stockroom
import StockroomDelivery
import Testing

/// The parts of webhook delivery that need no I/O: signing, the retry schedule, what
/// follows from a response, and pattern matching.
@Suite("Webhooks without I/O: signatures, retries, decisions, patterns")
struct WebhookLogicTests {
    static let secret = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    static let body = Array(#"{"data":{"id":1},"timestamp":"2026-12-05T00:40:13.123Z","type":"order.placed"}"#.utf8)

    @Test func theSignatureIsStandardWebhooksHMACOverIdTimestampAndBody() throws {
        let key = try #require(WebhookSignature.key(fromSecret: Self.secret))
        #expect(key == Array(0..<32))
        // Computed independently with Python's hmac and base64 modules.
        #expect(WebhookSignature.sign(key: key, id: "evt_42", timestamp: 1_764_895_213, body: Self.body) == "v1,yu1iFD6rz7u7Nl8bu05mLeINx4yp3RHhMQYurGP2g3Y=")
        let header = "v1,bm9wZQ== v1,yu1iFD6rz7u7Nl8bu05mLeINx4yp3RHhMQYurGP2g3Y="
        #expect(WebhookSignature.verify(header: header, key: key, id: "evt_42", timestamp: 1_764_895_213, body: Self.body))
        #expect(!WebhookSignature.verify(header: header, key: key, id: "evt_42", timestamp: 1_764_895_214, body: Self.body))
        #expect(!WebhookSignature.verify(header: header, key: key, id: "evt_43", timestamp: 1_764_895_213, body: Self.body))
        #expect(!WebhookSignature.verify(header: header, key: key, id: "evt_42", timestamp: 1_764_895_213, body: Self.body + [0x20]))
        #expect(WebhookSignature.key(fromSecret: "AAECAwQF") == nil)
        #expect(WebhookSignature.key(fromSecret: "whsec_!!!") == nil)
    }

    @Test func newSecretsAreWhsecAndThirtyTwoRandomBytes() throws {
        let one = WebhookSignature.newSecret(), two = WebhookSignature.newSecret()
        #expect(one.hasPrefix("whsec_") && one.count == 6 + 44)
        #expect(try #require(WebhookSignature.key(fromSecret: one)).count == 32)
        #expect(one != two)
    }

    @Test func theMessageIdIsStableAndTheBodyCarriesTheEventJSON() throws {
        let message = WebhookMessage(eventID: 17, type: "order.paid", createdAt: Date(timeIntervalSince1970: 1_764_895_213.5), eventJSON: #"{"id":17}"#)
        #expect(message.id == "evt_17")
        #expect(String(decoding: message.body, as: UTF8.self) == #"{"data":{"id":17},"timestamp":"2025-12-05T00:40:13.500Z","type":"order.paid"}"#)
        let headers = Dictionary(uniqueKeysWithValues: message.headers(key: Array(0..<32), timestamp: 99))
        #expect(headers["content-type"] == "application/json")
        #expect(headers["webhook-id"] == "evt_17")
        #expect(headers["webhook-timestamp"] == "99")
        #expect(headers["webhook-signature"] == WebhookSignature.sign(key: Array(0..<32), id: "evt_17", timestamp: 99, body: message.body))
    }

    @Test func retriesBackOffOverHoursWithJitterThenStop() {
        let schedule = RetrySchedule.standard
        #expect(schedule.maxAttempts == 10)
        #expect(schedule.delay(afterFailedAttempts: 1, random: 0) == .seconds(5))
        #expect(schedule.delay(afterFailedAttempts: 2, random: 0) == .seconds(30))
        #expect(schedule.delay(afterFailedAttempts: 9, random: 0) == .seconds(8 * 3600))
        // Jitter takes off up to a fifth.
        #expect(schedule.delay(afterFailedAttempts: 6, random: 0.5) == .seconds(3600 - 360))
        #expect(schedule.delay(afterFailedAttempts: 10, random: 0) == nil)
        #expect(schedule.delay(afterFailedAttempts: 0, random: 0) == nil)
        let total = (1...9).compactMap { schedule.delay(afterFailedAttempts: $0, random: 0) }.reduce(Duration.zero, +)
        #expect(total > .seconds(15 * 3600) && total < .seconds(17 * 3600))
    }

    @Test func aResponseDecidesWhatFollows() {
        let schedule = RetrySchedule(delays: [.milliseconds(10), .milliseconds(20)], jitter: 0)
        #expect(DeliveryDecision.decide(statusCode: 200, failedBefore: 0, schedule: schedule) == .delivered)
        #expect(DeliveryDecision.decide(statusCode: 204, failedBefore: 2, schedule: schedule) == .delivered)
        #expect(DeliveryDecision.decide(statusCode: 410, failedBefore: 0, schedule: schedule) == .gone)
        #expect(DeliveryDecision.decide(statusCode: 500, failedBefore: 0, schedule: schedule) == .retry(after: .milliseconds(10)))
        #expect(DeliveryDecision.decide(statusCode: nil, failedBefore: 1, schedule: schedule) == .retry(after: .milliseconds(20)))
        #expect(DeliveryDecision.decide(statusCode: 301, failedBefore: 2, schedule: schedule) == .dead)
        #expect(DeliveryDecision.decide(statusCode: nil, failedBefore: 2, schedule: schedule) == .dead)
    }

    @Test func patternsAreRedisGlobs() {
        #expect(EventPattern.matches("order.*", "order.placed"))
        #expect(EventPattern.matches("*", "product.low_stock"))
        #expect(EventPattern.matches("order.pai?", "order.paid"))
        #expect(EventPattern.matches("*.*d", "order.shipped"))
        #expect(!EventPattern.matches("order.*", "product.low_stock"))
        #expect(!EventPattern.matches("order.pai?", "order.pai"))
        #expect(!EventPattern.matches("order.placed", "order.placedx"))
        #expect(EventPattern.matchesAny(["product.*", "order.paid"], "order.paid"))
        #expect(!EventPattern.matches(String(repeating: "*a", count: 64), String(repeating: "a", count: 63) + "b"))
    }
}
