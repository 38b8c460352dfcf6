/// The prepared statements of one connection, least recently used evicted first.
/// A plain value, touched only on its connection's thread.
struct StatementCache {
    struct Key: Hashable {
        var sql: String
        var types: [UInt32]
    }

    let capacity: Int
    private var names: [Key: String] = [:]
    private var lastUse: [Key: UInt64] = [:]
    private var clock: UInt64 = 0
    private var nextID = 0
    /// Statements evicted but not yet deallocated on the server.
    private(set) var evicted: [String] = []

    init(capacity: Int) { self.capacity = capacity }

    var isEnabled: Bool { capacity > 0 }

    /// The name of a statement already prepared for `key`, marking it used.
    mutating func lookup(_ key: Key) -> String? {
        guard let name = names[key] else { return nil }
        clock += 1
        lastUse[key] = clock
        return name
    }

    /// A fresh name to prepare `key` under; call `insert` once the server accepted it.
    mutating func nextName() -> String {
        nextID += 1
        return "lpq_\(nextID)"
    }

    mutating func insert(_ key: Key, name: String) {
        if names.count >= capacity, let oldest = lastUse.min(by: { $0.value < $1.value })?.key {
            evicted.append(names[oldest]!)
            remove(oldest)
        }
        clock += 1
        names[key] = name
        lastUse[key] = clock
    }

    mutating func remove(_ key: Key) {
        names[key] = nil
        lastUse[key] = nil
    }

    mutating func takeEvicted() -> [String] {
        defer { evicted = [] }
        return evicted
    }

    /// Forgets everything, e.g. after a reconnect or `DISCARD ALL`.
    mutating func reset() {
        names = [:]
        lastUse = [:]
        evicted = []
    }

    var count: Int { names.count }
}
