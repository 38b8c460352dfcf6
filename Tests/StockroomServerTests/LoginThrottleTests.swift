import Testing
@testable import StockroomServer

@Suite("Login throttle (no I/O)")
struct LoginThrottleTests {
    @Test func repeatedFailuresForOneEmailWaitLongerAndSuccessForgives() {
        let throttle = LoginThrottle()
        #expect(throttle.delay(for: "ann@example.com") == .zero)
        for _ in 0..<3 { throttle.failed("Ann@Example.com") }
        #expect(throttle.delay(for: "ann@example.com") == .milliseconds(250), "case does not matter")
        throttle.failed("ann@example.com")
        #expect(throttle.delay(for: "ann@example.com") == .milliseconds(500))
        for _ in 0..<10 { throttle.failed("ann@example.com") }
        #expect(throttle.delay(for: "ann@example.com") == .seconds(4), "capped")
        #expect(throttle.delay(for: "bob@example.com") == .zero, "other emails are not slowed")
        throttle.succeeded("ann@example.com")
        #expect(throttle.delay(for: "ann@example.com") == .zero)
    }
}
