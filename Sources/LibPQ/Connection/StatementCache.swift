internal import Foundation

/// The prepared statements of one connection, least recently used evicted first.
/// A plain value, touched only on its connection's thread.
struct StatementCache {
    /// A statement is its text byte for byte, as the server reads it. String's own
    /// equality is Unicode canonical equivalence — `'é'` and `'e\u{301}'` are equal Strings
    /// but different statements — and its hashing normalizes first, which for statements
    /// of a few kilobytes cost more than the rest of the lookup.
    struct Key: Hashable {
        var sql: String
        var types: [UInt32]

        init(sql: String, types: [UInt32]) {
            var sql = sql
            sql.makeContiguousUTF8()
            self.sql = sql
            self.types = types
        }

        static func == (lhs: Key, rhs: Key) -> Bool {
            guard lhs.types == rhs.types, lhs.sql.utf8.count == rhs.sql.utf8.count else { return false }
            var left = lhs.sql, right = rhs.sql
            return left.withUTF8 { l in
                right.withUTF8 { r in l.count == 0 || memcmp(l.baseAddress!, r.baseAddress!, l.count) == 0 }
            }
        }

        func hash(into hasher: inout Hasher) {
            var sql = self.sql
            sql.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
            hasher.combine(types)
        }
    }

    private struct Entry {
        let name: String
        var lastUse: UInt64
    }

    let capacity: Int
    /// One dictionary, so that a hit hashes the statement's text once.
    private var entries: [Key: Entry] = [:]
    private var clock: UInt64 = 0
    private var nextID = 0
    /// Statements evicted but not yet deallocated on the server.
    private(set) var evicted: [String] = []

    init(capacity: Int) { self.capacity = capacity }

    var isEnabled: Bool { capacity > 0 }

    /// The name of a statement already prepared for `key`, marking it used.
    mutating func lookup(_ key: Key) -> String? {
        guard let index = entries.index(forKey: key) else { return nil }
        clock += 1
        entries.values[index].lastUse = clock
        return entries.values[index].name
    }

    /// A fresh name to prepare `key` under; call `insert` once the server accepted it.
    mutating func nextName() -> String {
        nextID += 1
        return "lpq_\(nextID)"
    }

    mutating func insert(_ key: Key, name: String) {
        if entries.count >= capacity, let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse }) {
            evicted.append(oldest.value.name)
            remove(oldest.key)
        }
        clock += 1
        entries[key] = Entry(name: name, lastUse: clock)
    }

    mutating func remove(_ key: Key) {
        entries[key] = nil
    }

    /// Drops `key`'s statement, whose plan the server can no longer use (a schema change
    /// altered its result's types): it is deallocated, and prepared anew on next use.
    mutating func invalidate(_ key: Key) {
        guard let entry = entries.removeValue(forKey: key) else { return }
        evicted.append(entry.name)
    }

    mutating func takeEvicted() -> [String] {
        defer { evicted = [] }
        return evicted
    }

    /// Forgets everything, e.g. after a reconnect or `DISCARD ALL`.
    mutating func reset() {
        entries = [:]
        evicted = []
    }

    var count: Int { entries.count }
}
