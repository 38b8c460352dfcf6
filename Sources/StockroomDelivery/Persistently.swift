/// Runs `body` until it succeeds, again after a growing pause (a quarter second, doubling
/// to 2 s) while it fails, for at most `patience`, and not once `giveUp()` says so.
/// Returns whether it succeeded.
///
/// For writing the outcome of a request already sent: when the database is away for a
/// moment, giving up at once leaves the delivery to its lease, and it and everything
/// queued behind it for the endpoint wait out the lease (a minute) although nothing
/// went wrong with the request itself.
func persistently(patience: Duration, giveUp: () -> Bool, _ body: () async throws -> Void) async -> Bool {
    let deadline = ContinuousClock.now + patience
    var pause: Duration = .milliseconds(250)
    while true {
        do {
            try await body()
            return true
        } catch {
            if giveUp() || ContinuousClock.now + pause >= deadline { return false }
            guard (try? await Task.sleep(for: pause)) != nil else { return false }
            pause = min(pause * 2, .seconds(2))
        }
    }
}
