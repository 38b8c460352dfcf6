import Synchronization

/// The port a listener bound, for callers that ask before it has (port 0 in tests), or
/// why it could not bind.
final class ListeningPort: Sendable {
    private let state = Mutex<(result: Result<Int, any Error>?, waiters: [CheckedContinuation<Int, any Error>])>((nil, []))

    func wait() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { state -> Result<Int, any Error>? in
                if state.result == nil { state.waiters.append(continuation) }
                return state.result
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    /// The first announcement counts; later ones (a failure after a bind) are ignored.
    func announce(_ result: Result<Int, any Error>) {
        let waiters = state.withLock { state -> [CheckedContinuation<Int, any Error>] in
            guard state.result == nil else { return [] }
            state.result = result
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(with: result) }
    }
}
