import Synchronization

/// Counters for INFO. Metrics go to swift-metrics as well; these are what a person typing
/// INFO into redis-cli sees.
final class ServerStats: Sendable {
    let startedAt = ContinuousClock.now
    let connectionsReceived = Atomic<Int>(0)
    let connectedClients = Atomic<Int>(0)
    let rejectedConnections = Atomic<Int>(0)
    let commandsProcessed = Atomic<Int>(0)
    let errorReplies = Atomic<Int>(0)
    private let nextClientID = Atomic<Int>(0)

    func newClientID() -> Int {
        nextClientID.add(1, ordering: .relaxed).newValue
    }
}
