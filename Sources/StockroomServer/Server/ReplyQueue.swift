import Synchronization

/// The replies of one connection on their way from the reader (which runs the requests)
/// to the writer (which sends the replies, in request order).
///
/// Bounded: the reader waits when `capacity` replies are queued or being written, so a
/// client that pipelines without reading cannot make the server hold unbounded work for
/// it. The writer takes everything queued at once, so the replies to a pipelined burst go
/// out in one flush.
final class ReplyQueue<Item: Sendable>: Sendable {
    private struct State {
        var items: [Item] = []
        /// Queued plus taken but not yet written.
        var outstanding = 0
        var finished = false
        var writer: CheckedContinuation<[Item]?, Never>?
        var readers: [CheckedContinuation<Bool, Never>] = []
    }

    private enum PushOutcome {
        case queued(CheckedContinuation<[Item]?, Never>?)
        case closed
        case full
    }

    private let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// Queues a reply; waits while the queue is full. False when the writer is gone.
    func push(_ item: Item) async -> Bool {
        while true {
            let outcome = state.withLock { state -> PushOutcome in
                if state.finished { return .closed }
                guard state.outstanding < capacity else { return .full }
                state.outstanding += 1
                guard let writer = state.writer else {
                    state.items.append(item)
                    return .queued(nil)
                }
                state.writer = nil
                return .queued(writer)
            }
            switch outcome {
            case .queued(let writer):
                writer?.resume(returning: [item])
                return true
            case .closed:
                return false
            case .full:
                let open = await withCheckedContinuation { continuation in
                    let ready = state.withLock { state -> Bool? in
                        if state.finished { return false }
                        if state.outstanding < capacity { return true }
                        state.readers.append(continuation)
                        return nil
                    }
                    if let ready { continuation.resume(returning: ready) }
                }
                if !open { return false }
            }
        }
    }

    /// Everything queued, waiting for at least one; nil once finished and drained.
    func takeAll() async -> [Item]? {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> [Item]?? in
                if !state.items.isEmpty {
                    defer { state.items.removeAll(keepingCapacity: true) }
                    return .some(state.items)
                }
                if state.finished { return .some(nil) }
                state.writer = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// The writer sent `count` replies: room for as many more.
    func written(_ count: Int) {
        let readers = state.withLock { state in
            state.outstanding -= count
            defer { state.readers.removeAll() }
            return state.readers
        }
        for reader in readers { reader.resume(returning: true) }
    }

    /// No more replies: the writer drains what is queued and stops; a waiting reader is
    /// released. Called by the reader when it is done and by the writer when it fails.
    func finish() {
        let (writer, readers) = state.withLock { state in
            state.finished = true
            defer { state.writer = nil; state.readers.removeAll() }
            return (state.items.isEmpty ? state.writer : nil, state.readers)
        }
        writer?.resume(returning: nil)
        for reader in readers { reader.resume(returning: false) }
    }
}
