import Synchronization

/// Runs `body` and returns its value, or nil once `deadline` has passed first; `body` is
/// then cancelled and not waited for. A probe must answer in time even when the database
/// hangs, and a statement stuck in a hung database may not end at once when cancelled.
func withDeadline<T: Sendable>(_ deadline: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
    let outcome = FirstOutcome<T>()
    return try await withCheckedThrowingContinuation { continuation in
        outcome.wait(continuation)
        let work = Task {
            do { outcome.finish(.success(try await body())) } catch { outcome.finish(.failure(error)) }
        }
        Task {
            try? await Task.sleep(for: deadline)
            if outcome.finish(.success(nil)) { work.cancel() }
        }
    }
}

/// Whichever of the body and the timer ends first resumes the caller; the other finds
/// nothing left to resume.
private final class FirstOutcome<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<T?, any Error>?>(nil)

    func wait(_ continuation: CheckedContinuation<T?, any Error>) {
        self.continuation.withLock { $0 = continuation }
    }

    /// Whether this was the first.
    @discardableResult
    func finish(_ result: Result<T?, any Error>) -> Bool {
        guard let continuation = continuation.withLock({ $0.take() }) else { return false }
        continuation.resume(with: result)
        return true
    }
}
