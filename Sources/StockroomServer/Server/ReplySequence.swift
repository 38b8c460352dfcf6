import NIOCore

/// The replies of one connection, in request order. Some are known when the request is
/// read, others (lookups, commands that run as tasks) come back later and in any order; a
/// reply goes out only when every reply before it has.
///
/// A plain value with no I/O: the connection handler reserves a place per request, fills
/// it when the reply exists, and writes what `takeReady` hands back.
struct ReplySequence {
    private var slots: [ByteBuffer?] = []
    /// Index in `slots` of the oldest reply not yet taken.
    private var head = 0
    /// Sequence number of `slots[0]`.
    private var base = 0
    /// Places reserved and not yet filled.
    private(set) var waiting = 0

    /// Replies not yet taken, ready or not.
    var count: Int { slots.count - head }
    var isEmpty: Bool { count == 0 }

    /// A reply known at once.
    mutating func append(_ reply: ByteBuffer) {
        slots.append(reply)
    }

    /// A place for a reply that comes later; returns its number, for `fill`.
    mutating func reserve() -> Int {
        slots.append(nil)
        waiting += 1
        return base + slots.count - 1
    }

    mutating func fill(_ number: Int, with reply: ByteBuffer) {
        let index = number - base
        precondition(index >= head && index < slots.count && slots[index] == nil, "reply \(number) filled twice or never reserved")
        slots[index] = reply
        waiting -= 1
    }

    /// Every reply that can go out now: the ready ones before the first still missing.
    mutating func takeReady() -> ArraySlice<ByteBuffer?> {
        let start = head
        while head < slots.count, slots[head] != nil { head += 1 }
        let ready = slots[start..<head]
        compact()
        return ready
    }

    /// Drops taken replies once they are the larger part, so the array does not grow with
    /// the life of the connection.
    private mutating func compact() {
        guard head > 64, head * 2 > slots.count else { return }
        slots.removeFirst(head)
        base += head
        head = 0
    }
}
