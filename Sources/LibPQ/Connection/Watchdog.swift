internal import Foundation
import Synchronization

/// Enforces every operation's deadline, for all connections, from one thread.
///
/// A timer per statement would cost an allocation and a timer-heap entry on the hot path
/// (and leave hundreds of thousands of dead entries behind at a few tens of thousands of
/// statements per second). Instead each connection keeps its operations in flight in a
/// list of its own (`OperationWatch`, one uncontended lock to join and one to leave) and
/// this thread looks at them every `tick`: deadlines are kept to within 10 ms, which is
/// plenty for limits measured in seconds.
final class Watchdog: @unchecked Sendable {
    static let shared = Watchdog()
    static let tick = Duration.milliseconds(10)

    private let watches = Mutex<[ObjectIdentifier: WeakWatch]>([:])

    private struct WeakWatch {
        weak var watch: OperationWatch?
    }

    private init() {
        let thread = Thread { [self] in run() }
        thread.name = "LibPQ.watchdog"
        thread.start()
    }

    func register(_ watch: OperationWatch) {
        watches.withLock { $0[ObjectIdentifier(watch)] = WeakWatch(watch: watch) }
    }

    func unregister(_ watch: OperationWatch) {
        _ = watches.withLock { $0.removeValue(forKey: ObjectIdentifier(watch)) }
    }

    private func run() {
        var controls: [OperationControl] = []
        while true {
            Thread.sleep(forTimeInterval: Self.tick.seconds)
            let live = watches.withLock { watches in watches.values.compactMap(\.watch) }
            for watch in live { watch.collect(into: &controls) }
            let now = ContinuousClock.now
            for control in controls { control.tick(now: now) }
            controls.removeAll(keepingCapacity: true)
        }
    }
}

/// The operations in flight on one connection: usually one, several when tasks queue
/// statements on the same connection.
final class OperationWatch: Sendable {
    private let controls = Mutex<[OperationControl]>([])

    init() { Watchdog.shared.register(self) }

    deinit { Watchdog.shared.unregister(self) }

    func add(_ control: OperationControl) {
        controls.withLock { $0.append(control) }
    }

    func remove(_ control: OperationControl) {
        controls.withLock { controls in
            if let index = controls.firstIndex(where: { $0 === control }) { controls.remove(at: index) }
        }
    }

    func collect(into list: inout [OperationControl]) {
        controls.withLock { list.append(contentsOf: $0) }
    }
}
