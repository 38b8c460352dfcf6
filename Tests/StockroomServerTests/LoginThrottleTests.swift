import Testing
@testable import StockroomServer

@Suite("Login throttle and LRU cache (no I/O)")
struct LoginThrottleTests {
    private func delay(_ decision: LoginThrottle.Decision) -> Duration? {
        if case .proceed(let after) = decision { return after }
        return nil
    }

    @Test func repeatedAttemptsForOneEmailWaitLongerAndSuccessForgives() {
        let throttle = LoginThrottle()
        for _ in 0..<3 { #expect(delay(throttle.attempt(email: "ann@example.com", address: nil)) == .zero) }
        #expect(delay(throttle.attempt(email: "ann@example.com", address: nil)) == .milliseconds(250))
        #expect(delay(throttle.attempt(email: "ann@example.com", address: nil)) == .milliseconds(500))
        for _ in 0..<10 { _ = throttle.attempt(email: "ann@example.com", address: nil) }
        #expect(delay(throttle.attempt(email: "ann@example.com", address: nil)) == .seconds(4), "capped")
        #expect(delay(throttle.attempt(email: "bob@example.com", address: nil)) == .zero, "other emails are not slowed")
        throttle.succeeded(email: "ann@example.com", address: nil)
        #expect(throttle.failures(email: "ann@example.com") == 0)
    }

    @Test func theLargerOfTheSharedAndTheLocalCountDecides() {
        let throttle = LoginThrottle()
        #expect(delay(throttle.attempt(email: "ann@example.com", address: nil, sharedFailures: 3)) == .milliseconds(250), "other instances' failures")
        #expect(delay(throttle.attempt(email: "ann@example.com", address: nil, sharedFailures: 0)) == .zero, "this instance's one failure")
        #expect(delay(throttle.attempt(email: "ann@example.com", address: nil, sharedFailures: 99)) == .seconds(4), "capped")
    }

    @Test func everySpellingOfOneEmailIsOneCounter() {
        let throttle = LoginThrottle()
        for spelling in ["ann@example.com", " ann@example.com", "ann@example.com ", "ANN@Example.COM", "\tAnn@example.com\n"] {
            _ = throttle.attempt(email: spelling, address: nil)
        }
        #expect(throttle.failures(email: "ann@example.com") == 5)
        #expect(delay(throttle.attempt(email: " ANN@EXAMPLE.COM ", address: nil)) == .seconds(1), "its sixth attempt")
    }

    @Test func attemptsCountBeforeTheyFinishSoParallelOnesAreSlowedToo() {
        // Ten logins sent at once: none has failed yet when the others start.
        let throttle = LoginThrottle()
        let delays = (0..<10).map { _ in delay(throttle.attempt(email: "ann@example.com", address: nil)) }
        #expect(delays.filter { $0 == .zero }.count == 3)
        #expect(delays.last == .seconds(4))
    }

    @Test func aFloodOfJunkEmailsEvictsOldCountersOneByOneAndNeverWipesTheTable() {
        var limits = LoginThrottle.Limits()
        limits.capacity = 100
        let throttle = LoginThrottle(limits: limits)
        for _ in 0..<5 { _ = throttle.attempt(email: "victim@example.com", address: nil) }
        for n in 0..<10_000 {
            _ = throttle.attempt(email: "junk\(n)@example.com", address: nil)
            if n % 50 == 0 { _ = throttle.attempt(email: "victim@example.com", address: nil) }  // in use
        }
        #expect(throttle.failures(email: "victim@example.com") == 5 + 200, "a counter in use survives the flood")
        let huge = String(repeating: "x", count: 1 << 20) + "@example.com"
        _ = throttle.attempt(email: huge, address: nil)
        #expect(throttle.failures(email: huge) == 1, "kept as a hash, not a megabyte")
    }

    @Test func oneAddressRunsOutOfFailedLoginsAndIsRefusedBeforeAnyHashing() {
        var limits = LoginThrottle.Limits()
        limits.failedLoginBurst = 5
        limits.failedLoginRefill = .seconds(60)
        let throttle = LoginThrottle(limits: limits)
        let start = ContinuousClock.now
        for n in 0..<5 {
            #expect(throttle.attempt(email: "user\(n)@example.com", address: "10.0.0.1", now: start) != .refused)
        }
        #expect(throttle.attempt(email: "new@example.com", address: "10.0.0.1", now: start) == .refused, "whatever the email")
        #expect(throttle.attempt(email: "new@example.com", address: "10.0.0.2", now: start) != .refused, "other addresses are not affected")
        #expect(throttle.attempt(email: "new@example.com", address: "10.0.0.1", now: start + .seconds(61)) != .refused, "one more per refill")
    }

    @Test func aSuccessfulLoginGivesItsAttemptBack() {
        var limits = LoginThrottle.Limits()
        limits.failedLoginBurst = 2
        limits.failedLoginRefill = .seconds(3600)
        let throttle = LoginThrottle(limits: limits)
        for _ in 0..<10 {
            #expect(throttle.attempt(email: "ann@example.com", address: "10.0.0.1") != .refused)
            throttle.succeeded(email: "ann@example.com", address: "10.0.0.1")
        }
    }

    @Test func registrationsPerAddressAreLimited() {
        var limits = LoginThrottle.Limits()
        limits.registrationBurst = 3
        limits.registrationRefill = .seconds(60)
        let throttle = LoginThrottle(limits: limits)
        let start = ContinuousClock.now
        #expect((0..<5).map { _ in throttle.mayRegister(address: "10.0.0.1", now: start) } == [true, true, true, false, false])
        #expect(throttle.mayRegister(address: "10.0.0.9", now: start))
        #expect(throttle.mayRegister(address: "10.0.0.1", now: start + .seconds(60)))
    }

    @Test func theLRUCacheEvictsTheLeastRecentlyUsed() {
        var cache = LRUCache<String, Int>(capacity: 3)
        cache.set("a", 1)
        cache.set("b", 2)
        cache.set("c", 3)
        #expect(cache.get("a") == 1)  // a is now the newest
        cache.set("d", 4)             // evicts b
        #expect(cache.get("b") == nil && cache.get("a") == 1 && cache.get("c") == 3 && cache.get("d") == 4)
        cache.remove("c")
        cache.set("e", 5)             // reuses c's slot, evicts nothing
        #expect(cache.count == 3 && cache.get("a") == 1 && cache.get("d") == 4 && cache.get("e") == 5)
        cache.set("a", 10)
        cache.set("f", 6)             // evicts d, the least recently used
        #expect(cache.get("d") == nil && cache.get("a") == 10 && cache.count == 3)
    }
}
