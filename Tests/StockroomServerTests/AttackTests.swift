import Foundation
import LibPQ
import NIOCore
import NIOPosix
import Stockroom
import Synchronization
import Testing
@testable import StockroomServer

/// Each attack from docs/PROTOCOL.md's threat model, over TCP against the real server,
/// with a bystander on other connections whose PINGs must stay fast meanwhile. The
/// figures are printed (`attack …:` lines) for the record. One at a time, each server on
/// event loops of its own: on the loops other tests share, their work would show in the
/// bystander's figures (and one attack's in another's).
@Suite("Attacks: a hostile client costs only itself", .serialized)
struct AttackTests {
    /// Two loops, as on the two-core machines this runs on.
    static let loops = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    @Test func aHostileConfigGetPatternIsAnsweredInLinearTime() async throws {
        try await TestServer.with(eventLoops: Self.loops) { server in
            try await server.client { (attacker: TestClient) async throws -> Void in
                try await Bystander.watching(server, "CONFIG GET glob") { () async throws -> Void in
                    let backtracking = String(repeating: "*", count: 40) + "#"
                    #expect(try await attacker.call("CONFIG", "GET", backtracking) == .array([]))
                    let interleaved = String(repeating: "*a", count: 200_000) + "#"
                    #expect(try await attacker.call("CONFIG", "GET", interleaved) == .array([]))
                    // A megabyte of stars once overflowed the stack: it matches every key.
                    let stars = try await attacker.call("CONFIG", "GET", String(repeating: "*", count: 1 << 20))
                    guard case .array(let pairs) = stars else { Issue.record("got \(stars)"); return }
                    #expect(pairs.count == 2 * server.server.dispatcher.configValues.count)
                }
                #expect(try await attacker.call("CONFIG", "GET", "client-query-buffer-limit") == .array([.bulk("client-query-buffer-limit"), .bulk("\(16 << 20)")]))
                #expect(try await attacker.call("CONFIG", "GET", "MAX?LIENTS") == .array([.bulk("maxclients"), .bulk("10000")]))
            }
        }
    }

    @Test func aPayloadOfSixtyThousandKeysCostsLinearTimeOffTheLoop() async throws {
        try await TestServer.with(eventLoops: Self.loops) { server in
            try await server.client { (attacker: TestClient) async throws -> Void in
                try await server.logIn(attacker)
                let keys = (0..<60_000).map { "\"k\($0)\":0" }.joined(separator: ",")
                try await Bystander.watching(server, "60,000-key ORDER.PLACE") { () async throws -> Void in
                    let start = ContinuousClock.now
                    #expect(try await attacker.call("ORDER.PLACE", "{\(keys)}") == .error("INVALID lines: is required"))
                    #expect(try await attacker.call("ORDER.PLACE", "{\(keys),\"k59999\":1}") == .error("INVALID json: not valid JSON"), "a duplicate at the very end")
                    // As many lines as fit in one argument: refused for their number, not parsed twice.
                    let lines = (0..<30_000).map { _ in #"{"product_id":1,"quantity":1}"# }.joined(separator: ",")
                    let many = try await attacker.call("ORDER.PLACE", #"{"lines":[\#(lines)]}"#)
                    #expect(many.errorCode == "INVALID", "\(many)")
                    print("attack 60,000-key ORDER.PLACE: three payloads answered in \((ContinuousClock.now - start).milliseconds) ms")
                }
            }
        }
    }

    @Test func aNULInASkuFailsOnlyItsOwnLookup() async throws {
        try await TestServer.with(eventLoops: Self.loops) { server in
            let id = try await server.product(sku: "MUG-NUL")
            try await server.client { (attacker: TestClient) async throws -> Void in
                try await Bystander.watching(server, "NUL sku in a shared batch") { () async throws -> Void in
                    // One read, so one batch.
                    try await attacker.send("PRODUCT.GET SKU MUG-NUL\r\nPRODUCT.GET SKU \"A\\x00B\"\r\nPRODUCT.GET SKU NO-SUCH\r\nPRODUCT.GET \(id)\r\n")
                    #expect(try await attacker.reply().json()["id"] as? Int == id)
                    #expect(try await attacker.reply().errorCode == "INVALID")
                    #expect(try await attacker.reply().errorCode == "NOTFOUND")
                    #expect(try await attacker.reply().json()["id"] as? Int == id)
                    let long = String(repeating: "A", count: 1 << 20)
                    #expect(try await attacker.call("PRODUCT.GET", "SKU", long) == .error("INVALID sku: must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"))
                }
            }
        }
    }

    @Test func aBatchThatFailsIsRetriedOneLookupAtATime() async throws {
        // Validation keeps bad skus out; should anything else fail a shared statement,
        // only the lookups that caused it fail. Fed to the batcher directly, past the
        // protocol's checks.
        try await TestServer.with(eventLoops: Self.loops) { server in
            let id = try await server.product(sku: "MUG-OK")
            let keys: [ProductLookupBatcher.Key] = [.sku("MUG-OK"), .sku("A\u{0}B"), .id(Int64(id)), .sku("NO-SUCH")]
            let answers = await Self.lookUp(keys, with: server.server.dispatcher.lookups)
            #expect(try answers[0].get()?.sku == "MUG-OK")
            #expect(throws: (any Error).self) { try answers[1].get() }
            #expect(try answers[2].get()?.id == Int64(id))
            #expect(try answers[3].get() == nil)
        }
    }

    @Test func aRequestOf256MiBIsRefusedOnceItsHeadersPass16MiB() async throws {
        try await TestServer.with(eventLoops: Self.loops) { server in
            try await server.client { (attacker: TestClient) async throws -> Void in
                let argument = "$\(1 << 20)\r\n" + String(repeating: "x", count: 1 << 20) + "\r\n"
                var sent = 0
                try await Bystander.watching(server, "256 MiB request") { () async throws -> Void in
                    try await attacker.send("*256\r\n")
                    do {
                        for _ in 0..<256 {
                            try await attacker.send(argument)
                            sent += 1
                        }
                    } catch {}  // the server closed the connection
                    let reply = try await attacker.nextReply()
                    if let reply {
                        #expect(reply == .error("ERR Protocol error: request too big (more than \(16 << 20) bytes)"))
                        #expect(try await attacker.isClosed())
                    }
                }
                print("attack 256 MiB request: the client got \(sent) MiB out before the server closed")
                // What the socket buffers hold beyond the 16 MiB, at most.
                #expect(sent < 64, "the server kept reading a request it had refused")
            }
        }
    }

    @Test func threeHundredThousandPipelinedLookupsNeverReadDelayNobody() async throws {
        try await TestServer.with(eventLoops: Self.loops, configure: {
            $0.slowReaderTimeout = .seconds(2)
        }) { server in
            let id = try await server.product(sku: "MUG-FLOOD")
            // A raw channel that never reads: its replies pile up in the server.
            let flood = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.autoRead, value: false)
                .connect(host: "127.0.0.1", port: server.port).get()
            let request = "PRODUCT.GET \(id)\r\n"
            try await Bystander.watching(server, "300,000 pipelined lookups never read") { () async throws -> Void in
                for _ in 0..<30 {
                    flood.writeAndFlush(ByteBuffer(string: String(repeating: request, count: 10_000)), promise: nil)
                }
                try await Task.sleep(for: .milliseconds(500))
                try await server.client { (other: TestClient) async throws -> Void in
                    for _ in 0..<20 {
                        let start = ContinuousClock.now
                        #expect(try await other.call("PRODUCT.GET", "\(id)").json()["sku"] as? String == "MUG-FLOOD")
                        let waited = ContinuousClock.now - start
                        #expect(waited < .seconds(2), "another client's lookup waited \(waited) behind the flood")
                    }
                    let waiting = server.server.dispatcher.lookups.waiting
                    #expect(waiting <= ConnectionHandler.maxOutstanding, "the flood holds \(waiting) places in the shared queue")
                }
            }
            // It reads nothing: closed once the slow-reader timeout passes with no progress.
            let closed = Task { try await flood.closeFuture.get() }
            let deadline = Task { try await Task.sleep(for: .seconds(10)); flood.close(promise: nil) }
            let start = ContinuousClock.now
            try? await closed.value
            deadline.cancel()
            #expect(ContinuousClock.now - start < .seconds(8), "the server closed the reader that never reads")
        }
    }

    @Test func aSlowReaderThatKeepsReadingIsNotCutOff() async throws {
        try await TestServer.with(eventLoops: Self.loops, configure: {
            $0.maxPendingReplyBytes = 64 * 1024
            $0.slowReaderTimeout = .milliseconds(500)
        }) { server in
            try await server.client { (c: TestClient) async throws -> Void in
                let payload = String(repeating: "x", count: 32 * 1024)
                let burst = String(repeating: TestClient.resp(["ECHO", payload]), count: 100)
                try await c.send(burst)
                // 3.2 MiB of replies read over some 2.5 s, well past the timeout, but
                // never stopping for as long as it.
                for n in 0..<100 {
                    guard try await c.nextReply() == .bulk(payload) else {
                        Issue.record("cut off after \(n) replies")
                        return
                    }
                    if n % 10 == 0 { try await Task.sleep(for: .milliseconds(250)) }
                }
            }
        }
    }

    @Test func everySpellingOfAnEmailCountsAgainstOneThrottle() async throws {
        try await TestServer.with(eventLoops: Self.loops) { server in
            let user = try await server.register()
            let spellings = [user.email, " \(user.email)", "\(user.email) ", user.email.uppercased(), "\t\(user.email.capitalized)"]
            try await Bystander.watching(server, "throttle spelled five ways") { () async throws -> Void in
                for spelling in spellings {
                    try await server.client { (c: TestClient) async throws -> Void in
                        let email = String(data: try JSONEncoder().encode(spelling), encoding: .utf8)!
                        #expect(try await c.call("SESSION.LOGIN", #"{"email":\#(email),"password":"wrong-password"}"#).errorCode == "WRONGPASS")
                    }
                }
            }
            #expect(server.server.dispatcher.throttle.failures(email: user.email) == 5)
            try await server.client { (c: TestClient) async throws -> Void in
                let start = ContinuousClock.now
                _ = try await server.logIn(c, as: user)
                #expect(ContinuousClock.now - start >= .milliseconds(900), "the sixth attempt waits a second, right password or not")
            }
        }
    }

    @Test func oneAddressRunsOutOfFailedLoginsWhateverTheEmails() async throws {
        try await TestServer.with(eventLoops: Self.loops, configure: {
            $0.failedLoginsPerAddress = RateLimit(burst: 4, refill: .seconds(3600))
            $0.registrationsPerAddress = RateLimit(burst: 2, refill: .seconds(3600))
        }) { server in
            let user = try await server.register()
            try await server.client { (c: TestClient) async throws -> Void in
                for n in 0..<4 {
                    #expect(try await c.call("AUTH", "nobody\(n)@example.com", "wrong-password") == .error("WRONGPASS wrong email or password"))
                }
            }
            try await server.client { (c: TestClient) async throws -> Void in
                #expect(try await c.call("AUTH", user.email, "password123") == .error("WRONGPASS too many failed logins from this address; try again later"), "refused before the password is checked")
                for n in 0..<2 {
                    let body = #"{"email":"new\#(n)@example.com","name":"New","password":"password123"}"#
                    #expect(try await c.call("USER.REGISTER", body).json()["email"] as? String == "new\(n)@example.com")
                }
                #expect(try await c.call("USER.REGISTER", #"{"email":"new9@example.com","name":"New","password":"password123"}"#).errorCode == "UNAVAILABLE")
            }
        }
    }

    @Test func aRevokedLoginEndsOnEveryLiveConnection() async throws {
        try await TestServer.with(eventLoops: Self.loops) { server in
            let customer = try await server.register()
            try await server.client { (owner: TestClient) async throws -> Void in
                try await server.client { (other: TestClient) async throws -> Void in
                    let token = try await server.logIn(owner, as: customer).token
                    #expect(try await other.call("AUTH", token) == .simple("OK"))
                    #expect(try await other.call("WHOAMI").json()["id"] as? Int == customer.id)
                    try await Bystander.watching(server, "revoked token on a live connection") { () async throws -> Void in
                        #expect(try await owner.call("SESSION.LOGOUT") == .simple("OK"))
                        #expect(try await other.call("WHOAMI").errorCode == "NOAUTH", "logged out through this server: at once")
                        #expect(try await other.call("ORDER.LIST").errorCode == "NOAUTH")
                    }
                }
            }
        }
    }

    /// Polls `command` on `client` until it answers `code`; how long that took.
    private func time(until code: String, _ client: TestClient, _ command: String...) async throws -> Duration {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .seconds(5) {
            if try await client.call(command).errorCode == code { return ContinuousClock.now - start }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("\(command) never answered \(code)")
        return .seconds(5)
    }

    @Test func changesMadeElsewhereReachLiveConnectionsWithinASecond() async throws {
        // Made straight in the database, as another instance or an admin tool would.
        try await TestServer.with(eventLoops: Self.loops) { server in
            let accounts = server.stockroom.accounts
            let admin = Principal(userID: 0, role: .admin)
            try await server.client { (c: TestClient) async throws -> Void in
                let revoked = try await server.register()
                try await server.logIn(c, as: revoked)
                try await accounts.revokeAllSessions(userID: Int64(revoked.id))
                let afterRevoke = try await time(until: "NOAUTH", c, "WHOAMI")

                let expiring = try await server.register()
                let token = try await server.logIn(c, as: expiring).token
                let connection = try await PostgresConnection.connect(server.databaseURL)
                try await connection.query("UPDATE sessions SET expires_at = now() + interval '300 milliseconds' WHERE user_id = \(Int64(expiring.id))")
                await connection.close()
                let afterExpiry = try await time(until: "NOAUTH", c, "WHOAMI")
                #expect(try await c.call("AUTH", token) == .error("WRONGPASS invalid or expired session token"))

                let deactivated = try await server.register()
                try await server.logIn(c, as: deactivated)
                try await accounts.deactivate(userID: Int64(deactivated.id), as: admin)
                let afterDeactivation = try await time(until: "NOAUTH", c, "WHOAMI")
                #expect(try await c.call("AUTH", deactivated.email, "password123").errorCode == "WRONGPASS", "and cannot log in again")

                let demoted = try await server.register(admin: true)
                try await server.logIn(c, as: demoted)
                #expect(try await c.call("USER.LIST").json()["items"] != nil)
                _ = try await accounts.setRole(userID: Int64(demoted.id), to: .customer, as: admin)
                let afterDemotion = try await time(until: "NOPERM", c, "USER.LIST")

                print("attack stale logins: revoked after \(afterRevoke.milliseconds) ms, expired after \(afterExpiry.milliseconds) ms, deactivated after \(afterDeactivation.milliseconds) ms, demoted after \(afterDemotion.milliseconds) ms")
                for (what, took) in [("revocation", afterRevoke), ("deactivation", afterDeactivation), ("role change", afterDemotion)] {
                    // The check interval is 1 s; what is left is this busy test process.
                    #expect(took < .seconds(2), "\(what) took \(took) to reach a live connection")
                }
            }
        }
    }

    @Test func adminCommandsEndSessionsAtOnce() async throws {
        try await TestServer.with(eventLoops: Self.loops) { server in
            try await server.client { (admin: TestClient) async throws -> Void in
                try await server.client { (c: TestClient) async throws -> Void in
                    try await server.logIn(admin, admin: true)
                    let customer = try await server.logIn(c)
                    #expect(try await admin.call("USER.SETROLE", "\(customer.id)", "admin").json()["role"] as? String == "admin")
                    #expect(try await c.call("USER.LIST").json()["items"] != nil, "promoted at once")
                    #expect(try await admin.call("USER.DEACTIVATE", "\(customer.id)") == .simple("OK"))
                    #expect(try await c.call("WHOAMI").errorCode == "NOAUTH")
                    let other = try await server.logIn(c)
                    #expect(try await admin.call("SESSION.REVOKEALL", "\(other.id)") == .integer(1))
                    #expect(try await c.call("WHOAMI").errorCode == "NOAUTH")
                    #expect(try await admin.call("USER.DEACTIVATE", "999999") .errorCode == "NOTFOUND")
                    #expect(try await admin.call("USER.SETROLE", "\(other.id)", "owner").errorCode == "INVALID")
                }
            }
        }
    }

    private final class Answers: Sendable {
        let state: Mutex<[Int: Result<Product?, any Error>]> = Mutex([:])
    }

    /// Hands `keys` to the batcher as one arrival and waits for every answer.
    static func lookUp(_ keys: [ProductLookupBatcher.Key], with batcher: ProductLookupBatcher) async -> [Result<Product?, any Error>] {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let answers = Answers()
        return await withCheckedContinuation { continuation in
            let waiters = keys.enumerated().map { n, key in
                ProductLookupBatcher.Waiter(key: key, connection: 1, loop: loop) { result in
                    let all = answers.state.withLock { state -> [Result<Product?, any Error>]? in
                        state[n] = result
                        return state.count == keys.count ? (0..<keys.count).map { state[$0]! } : nil
                    }
                    if let all { continuation.resume(returning: all) }
                }
            }
            batcher.products(waiters)
        }
    }
}
