/// The bookkeeping of a connection pool, without any I/O: every event returns the
/// actions the pool must carry out. Generic over the connection so tests can drive it
/// with plain values.
struct PoolStateMachine<Connection> {
    typealias WaiterID = Int

    enum Action {
        case none
        /// Hand `connection` to waiter `waiter`.
        case lease(Connection, to: WaiterID)
        /// Open a new connection, then report `opened` or `openFailed`.
        case open
        /// Fail waiter with the error, then open another connection for those still waiting.
        case fail(WaiterID, PoolFailure, thenOpen: Bool)
        case close(Connection)
        /// Close these idle connections; if `finished`, the pool is fully closed.
        case shutDown([Connection], finished: Bool)
        case finishedClosing
    }

    enum PoolFailure: Equatable {
        case closed
        case exhausted
        case connectFailed
    }

    enum AcquireResult {
        case leased(Connection)
        case wait(open: Bool)
        case failed(PoolFailure)
    }

    let maxConnections: Int
    private(set) var idle: [Connection] = []
    /// Connections open or opening, leased or idle.
    private(set) var total = 0
    private(set) var waiters: [WaiterID] = []
    private(set) var isClosing = false

    init(maxConnections: Int) {
        precondition(maxConnections > 0, "a pool needs at least one connection")
        self.maxConnections = maxConnections
    }

    var leased: Int { total - idle.count }

    /// An idle connection, if one is free right now.
    mutating func acquireIdle() -> Connection? {
        isClosing ? nil : idle.popLast()
    }

    mutating func acquire(_ waiter: WaiterID) -> AcquireResult {
        if isClosing { return .failed(.closed) }
        // Most recently used first: warm caches, and surplus connections go quiet.
        if let connection = idle.popLast() { return .leased(connection) }
        waiters.append(waiter)
        if total < maxConnections {
            total += 1
            return .wait(open: true)
        }
        return .wait(open: false)
    }

    /// A leased connection comes back; `reusable` is false when it broke or was left
    /// inside a transaction, and the caller closes it.
    mutating func release(_ connection: Connection, reusable: Bool) -> Action {
        guard reusable else {
            total -= 1
            if isClosing { return total == 0 ? .finishedClosing : .none }
            // Replace it for whoever waits.
            if !waiters.isEmpty { total += 1; return .open }
            return .none
        }
        return offer(connection)
    }

    mutating func opened(_ connection: Connection) -> Action { offer(connection) }

    mutating func openFailed() -> Action {
        total -= 1
        guard !waiters.isEmpty else { return isClosing && total == 0 ? .finishedClosing : .none }
        let waiter = waiters.removeFirst()
        let openAnother = !waiters.isEmpty && !isClosing
        if openAnother { total += 1 }
        return .fail(waiter, .connectFailed, thenOpen: openAnother)
    }

    /// The waiter gave up (timeout or cancellation); false if it was already served.
    mutating func abandon(_ waiter: WaiterID) -> Bool {
        guard let index = waiters.firstIndex(of: waiter) else { return false }
        waiters.remove(at: index)
        return true
    }

    mutating func close() -> Action {
        isClosing = true
        let closing = idle
        total -= idle.count
        idle = []
        return .shutDown(closing, finished: total == 0)
    }

    /// Waiters to fail when the pool closes.
    mutating func takeWaiters() -> [WaiterID] {
        defer { waiters = [] }
        return waiters
    }

    private mutating func offer(_ connection: Connection) -> Action {
        if !waiters.isEmpty { return .lease(connection, to: waiters.removeFirst()) }
        if isClosing {
            total -= 1
            return .close(connection)
        }
        idle.append(connection)
        return .none
    }
}
