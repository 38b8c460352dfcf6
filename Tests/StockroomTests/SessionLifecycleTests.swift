import Foundation
import LibPQ
@testable import Stockroom
import Testing

@Suite("Sessions: caps, purge, deactivation, roles; hashing admission")
struct SessionLifecycleTests {
    @Test func aUserHoldsAtMostMaxSessionsAndTheOldestGoFirst() async throws {
        try await TestStockroom.withStockroom { stockroom, _ in
            var accounts = stockroom.accounts
            accounts.maxSessionsPerUser = 3
            _ = try await accounts.register(email: "ann@example.com", name: "Ann", password: "correct horse")
            var tokens: [String] = []
            for _ in 0..<5 { tokens.append(try await accounts.login(email: "ann@example.com", password: "correct horse").token) }
            for token in tokens.prefix(2) {
                await #expect(throws: StockroomError.self) { try await accounts.authenticate(token: token) }
            }
            for token in tokens.suffix(3) { _ = try await accounts.authenticate(token: token) }
            let count = try await stockroom.pool.query("SELECT count(*) FROM sessions")[0][0, as: Int64.self]
            #expect(count == 3)
        }
    }

    @Test func expiredAndRevokedSessionsArePurgedAfterTheGrace() async throws {
        try await TestStockroom.withStockroom { stockroom, _ in
            let accounts = stockroom.accounts
            _ = try await accounts.register(email: "ann@example.com", name: "Ann", password: "correct horse")
            let live = try await accounts.login(email: "ann@example.com", password: "correct horse").token
            let expired = try await accounts.login(email: "ann@example.com", password: "correct horse").token
            let revoked = try await accounts.login(email: "ann@example.com", password: "correct horse").token
            let recent = try await accounts.login(email: "ann@example.com", password: "correct horse").token
            try await accounts.logout(token: revoked)
            try await accounts.logout(token: recent)
            for (token, age) in [(expired, "expires_at"), (revoked, "revoked_at")] {
                let hash = SessionToken.hash(of: token)!
                try await stockroom.pool.query("UPDATE sessions SET created_at = now() - interval '3 days', \(unsafeRaw: age) = now() - interval '2 days' WHERE token_hash = \(hash)")
            }
            #expect(try await accounts.purgeSessions(grace: .seconds(24 * 3600)) == 2)
            #expect(try await accounts.purgeSessions(grace: .seconds(24 * 3600)) == 0)
            _ = try await accounts.authenticate(token: live)
            let left = try await stockroom.pool.query("SELECT count(*) FROM sessions")[0][0, as: Int64.self]
            #expect(left == 2, "the live one and the one revoked a moment ago stay")
        }
    }

    @Test func aDeactivatedUserCannotLogInAndTheirSessionsEnd() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            let admin = try await fixtures.admin()
            let accounts = stockroom.accounts
            let user = try await accounts.register(email: "ann@example.com", name: "Ann", password: "correct horse")
            let token = try await accounts.login(email: "ann@example.com", password: "correct horse").token
            #expect(try await accounts.session(token: token).user.id == user.id)
            try await accounts.deactivate(userID: user.id, as: admin)
            try await accounts.deactivate(userID: user.id, as: admin)  // again: not an error
            await #expect(throws: StockroomError.self) { try await accounts.session(token: token) }
            let error = await #expect(throws: StockroomError.self) { try await accounts.login(email: "ann@example.com", password: "correct horse") }
            #expect(error?.code == .unauthenticated)
            let customer = Principal(user)
            await #expect(throws: StockroomError.self) { try await accounts.deactivate(userID: admin.userID, as: customer) }
            let missing = await #expect(throws: StockroomError.self) { try await accounts.deactivate(userID: 999_999, as: admin) }
            #expect(missing?.code == .notFound)
        }
    }

    @Test func aRoleChangeShowsInTheSessionsUser() async throws {
        try await TestStockroom.withStockroom { stockroom, fixtures in
            let admin = try await fixtures.admin()
            let accounts = stockroom.accounts
            let user = try await accounts.register(email: "ann@example.com", name: "Ann", password: "correct horse")
            let token = try await accounts.login(email: " ANN@example.com ", password: "correct horse").token
            #expect(try await accounts.setRole(userID: user.id, to: .admin, as: admin).role == .admin)
            #expect(try await accounts.session(token: token).user.role == .admin)
            let customer = Principal(userID: 999_999, role: .customer)
            await #expect(throws: StockroomError.self) { _ = try await accounts.setRole(userID: admin.userID, to: .customer, as: customer) }
        }
    }

    @Test func hashingBeyondItsAdmissionLimitIsRefusedAtOnce() async throws {
        // Two hash at a time; with room for two, a burst of 24 has some refused. Bursts are
        // larger than the four places: on a machine loaded by the rest of the suite their
        // tasks may start so far apart that a dozen find the queue drained.
        let hasher = PasswordHasher(operations: 3, memoryBytes: 32 << 20, maxWaiting: 2)
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<24 {
                group.addTask { (try? await hasher.hash("correct horse")) != nil }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        let refused = outcomes.filter { !$0 }.count
        #expect(refused > 0, "all 24 were queued")
        #expect(outcomes.filter { $0 }.count >= 2, "those admitted were hashed")
        let error = await #expect(throws: StockroomError.self) {
            try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<48 { group.addTask { try await hasher.hash("correct horse") } }
                for try await _ in group {}
            }
        }
        #expect(error?.code == .unavailable)
    }
}
