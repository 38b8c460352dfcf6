import Synchronization

final class Counter: Sendable {
    private let count = Mutex(0)
    func increment() -> Int { count.withLock { $0 += 1; return $0 } }
    var value: Int { count.withLock { $0 } }
}

/// Holds arrivals until `expected` tasks have arrived.
actor Gate {
    private var arrived = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func arrive(expected: Int) async {
        arrived += 1
        if arrived >= expected {
            waiting.forEach { $0.resume() }
            waiting = []
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }
}

/// Closed until `open()` is called; then every `wait()`, earlier or later, returns.
actor Latch {
    private var isOpen = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func open() {
        isOpen = true
        waiting.forEach { $0.resume() }
        waiting = []
    }

    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiting.append($0) }
    }
}
