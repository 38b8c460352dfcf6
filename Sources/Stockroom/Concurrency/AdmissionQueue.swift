/// Who runs and who waits at an `AdmissionGate`: at most `limit` inside, at most
/// `maxWaiting` in line, first come first served, each waiting until its deadline at
/// most. A plain value with no I/O, so its rules are tested without tasks or clocks
/// (`AdmissionQueueTests`).
struct AdmissionQueue<Waiter, Instant: Comparable> {
    enum Entry {
        /// Go in now.
        case admitted
        /// Wait for `leave` to hand over a place (or `expire`, or `abandon`).
        case queued
        /// The line is full: refuse at once.
        case refused
    }

    let limit: Int
    let maxWaiting: Int
    private(set) var inside = 0
    private var line: [(id: Int, waiter: Waiter, deadline: Instant)] = []
    private var head = 0

    init(limit: Int, maxWaiting: Int) {
        precondition(limit >= 1 && maxWaiting >= 0)
        self.limit = limit
        self.maxWaiting = maxWaiting
    }

    var waiting: Int { line.count - head }

    /// Deadlines must not decrease from one call to the next (one timeout for all), so
    /// that the line is in deadline order too.
    mutating func enter(_ id: Int, _ waiter: Waiter, deadline: Instant) -> Entry {
        if inside < limit, waiting == 0 {
            inside += 1
            return .admitted
        }
        guard waiting < maxWaiting else { return .refused }
        line.append((id, waiter, deadline))
        return .queued
    }

    /// One inside is done: the waiter to let in now, if any (its place taken over, so
    /// `inside` does not change).
    mutating func leave() -> Waiter? {
        guard waiting > 0 else {
            inside -= 1
            return nil
        }
        let next = line[head].waiter
        head += 1
        compact()
        return next
    }

    /// The waiters whose deadline is before `now`, taken out of the line.
    mutating func expire(before now: Instant) -> [Waiter] {
        var expired: [Waiter] = []
        while head < line.count, line[head].deadline < now {
            expired.append(line[head].waiter)
            head += 1
        }
        compact()
        return expired
    }

    /// The waiter `id` gave up (its task was cancelled): taken out of the line, or nil
    /// when it is no longer there.
    mutating func abandon(_ id: Int) -> Waiter? {
        guard let index = line[head...].firstIndex(where: { $0.id == id }) else { return nil }
        return line.remove(at: index).waiter
    }

    private mutating func compact() {
        if head == line.count {
            line.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 64, head * 2 > line.count {
            line.removeFirst(head)
            head = 0
        }
    }
}
