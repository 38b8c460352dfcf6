import Foundation
import LibPQ
import StockroomDelivery
import Testing

@Suite("Jobs: expiry of untried ones, and retries by hand")
struct JobRepositoryTests {
    /// A job nobody took up within the age limit of falling due is dead; one retried by
    /// hand falls due again when retried, so an old job put back is not expired at once.
    @Test func untriedJobsExpireByWhenTheyFellDueNotWhenTheyWereWritten() async throws {
        // No job worker here: its own sweep would race the one this test makes.
        try await TestServer.with(configure: { $0.jobs = nil }) { server in
            try await server.client { (customer: TestClient) async throws -> Void in
                try await server.logIn(customer)
                let forgotten = Int64(try await PaymentTests.order(server, customer))
                let retried = Int64(try await PaymentTests.order(server, customer))
                let pool = server.stockroom.pool
                try await pool.query("""
                    INSERT INTO jobs (kind, order_id, state, created_at, updated_at, next_attempt_at, finished_at, last_error)
                    VALUES ('mail.order_confirmation', \(forgotten), 'pending', now() - interval '2 days', now() - interval '2 days', now() - interval '2 days', NULL, NULL),
                           ('mail.order_confirmation', \(retried), 'dead', now() - interval '2 days', now() - interval '2 days', now() - interval '2 days', now() - interval '1 day', 'relay down')
                    """)
                let jobs = JobRepository(pool: pool)
                let id = try #require(try await jobs.list(state: .dead).first { $0.orderID == retried }?.id)
                let put = try await jobs.retry(id: id)
                #expect(put.state == .pending && put.attempts == 0 && put.lastError == "relay down")

                #expect(try await jobs.expireUntried(olderThan: Date().addingTimeInterval(-24 * 3600)) == 1)
                #expect(try await jobs.job(kind: .orderConfirmation, orderID: forgotten)?.state == .dead)
                #expect(try await jobs.job(kind: .orderConfirmation, orderID: retried)?.state == .pending)
                #expect(try await jobs.list(state: .pending).map(\.orderID) == [retried])
            }
        }
    }
}
