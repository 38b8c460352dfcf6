/// A map of at most `capacity` entries that forgets the least recently used one to make
/// room. For counters keyed by what clients send (emails, addresses): memory stays
/// bounded, and a flood of new keys pushes out old ones one at a time instead of wiping
/// the whole table, so a counter that is in use survives it.
///
/// Nodes live in an array, linked by index: no allocation per entry once it is full.
struct LRUCache<Key: Hashable, Value> {
    private struct Node {
        var key: Key
        var value: Value
        var newer: Int?
        var older: Int?
    }

    let capacity: Int
    private var index: [Key: Int] = [:]
    private var nodes: [Node] = []
    private var newest: Int?
    private var oldest: Int?
    /// Slots of removed entries, reused before the array grows.
    private var free: [Int] = []

    init(capacity: Int) {
        precondition(capacity >= 1)
        self.capacity = capacity
        index.reserveCapacity(capacity)
    }

    var count: Int { index.count }

    /// The value for `key`, marking it used.
    mutating func get(_ key: Key) -> Value? {
        guard let slot = index[key] else { return nil }
        touch(slot)
        return nodes[slot].value
    }

    /// Sets `key`'s value, marking it used; evicts the least recently used entry when full.
    mutating func set(_ key: Key, _ value: Value) {
        if let slot = index[key] {
            nodes[slot].value = value
            touch(slot)
            return
        }
        let slot: Int
        if let reused = free.popLast() {
            slot = reused
            nodes[slot] = Node(key: key, value: value)
        } else if nodes.count < capacity {
            slot = nodes.count
            nodes.append(Node(key: key, value: value))
        } else {
            slot = oldest!
            unlink(slot)
            index[nodes[slot].key] = nil
            nodes[slot] = Node(key: key, value: value)
        }
        index[key] = slot
        linkAsNewest(slot)
    }

    /// Forgets `key`; its slot goes to the next new key.
    mutating func remove(_ key: Key) {
        guard let slot = index.removeValue(forKey: key) else { return }
        unlink(slot)
        free.append(slot)
    }

    private mutating func touch(_ slot: Int) {
        guard newest != slot else { return }
        unlink(slot)
        linkAsNewest(slot)
    }

    private mutating func unlink(_ slot: Int) {
        let (newer, older) = (nodes[slot].newer, nodes[slot].older)
        if let newer { nodes[newer].older = older } else { newest = older }
        if let older { nodes[older].newer = newer } else { oldest = newer }
        nodes[slot].newer = nil
        nodes[slot].older = nil
    }

    private mutating func linkAsNewest(_ slot: Int) {
        nodes[slot].older = newest
        nodes[slot].newer = nil
        if let newest { nodes[newest].newer = slot } else { oldest = slot }
        newest = slot
    }
}
