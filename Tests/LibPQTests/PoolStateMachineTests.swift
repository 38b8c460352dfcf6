@testable import LibPQ
import Testing

@Suite("Pool state machine, without I/O")
struct PoolStateMachineTests {
    typealias Machine = PoolStateMachine<String>

    @Test func opensUpToTheLimitThenQueues() {
        var machine = Machine(maxConnections: 2)
        guard case .wait(open: true) = machine.acquire(1) else { Issue.record("expected open"); return }
        guard case .wait(open: true) = machine.acquire(2) else { Issue.record("expected open"); return }
        guard case .wait(open: false) = machine.acquire(3) else { Issue.record("expected queueing"); return }
        #expect(machine.total == 2)
        guard case .lease("a", to: 1) = machine.opened("a") else { Issue.record("first waiter first"); return }
        guard case .lease("b", to: 2) = machine.opened("b") else { Issue.record("second waiter"); return }
        guard case .lease("a", to: 3) = machine.release("a", reusable: true) else { Issue.record("third waiter gets a"); return }
        guard case .none = machine.release("b", reusable: true) else { Issue.record("b goes idle"); return }
        #expect(machine.idle == ["b"])
        #expect(machine.acquireIdle() == "b")
    }

    @Test func aBrokenConnectionIsReplacedForWaiters() {
        var machine = Machine(maxConnections: 1)
        _ = machine.acquire(1)
        _ = machine.opened("a")
        _ = machine.acquire(2)
        guard case .open = machine.release("a", reusable: false) else { Issue.record("expected replacement"); return }
        #expect(machine.total == 1)
        guard case .lease("b", to: 2) = machine.opened("b") else { Issue.record("waiter gets the new one"); return }
    }

    @Test func connectFailuresFailOneWaiterAndRetryForTheRest() {
        var machine = Machine(maxConnections: 1)
        _ = machine.acquire(1)
        _ = machine.acquire(2)
        guard case .fail(1, .connectFailed, thenOpen: true) = machine.openFailed() else { Issue.record("fail first, retry for second"); return }
        guard case .fail(2, .connectFailed, thenOpen: false) = machine.openFailed() else { Issue.record("fail second"); return }
        #expect(machine.total == 0)
    }

    @Test func abandonedWaitersAreSkipped() {
        var machine = Machine(maxConnections: 1)
        _ = machine.acquire(1)
        _ = machine.acquire(2)
        let first = machine.abandon(1)
        let again = machine.abandon(1)
        #expect(first)
        #expect(!again)
        guard case .lease("a", to: 2) = machine.opened("a") else { Issue.record("skips the abandoned waiter"); return }
    }

    @Test func closingClosesIdleNowAndLeasedOnReturn() {
        var machine = Machine(maxConnections: 2)
        _ = machine.acquire(1); _ = machine.opened("a")
        _ = machine.acquire(2); _ = machine.opened("b")
        _ = machine.release("b", reusable: true)
        guard case .shutDown(["b"], finished: false) = machine.close() else { Issue.record("close idle b"); return }
        guard case .failed(.closed) = machine.acquire(3) else { Issue.record("no new leases"); return }
        guard case .close("a") = machine.release("a", reusable: true) else { Issue.record("close a on return"); return }
        #expect(machine.total == 0)
    }
}
