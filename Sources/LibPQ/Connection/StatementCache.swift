internal import Foundation

/// The prepared statements of one connection, least recently used evicted first.
/// A plain value, touched only on its connection's thread.
struct StatementCache {
    /// A statement is its text byte for byte, as the server reads it. String's own
    /// equality is Unicode canonical equivalence — `'é'` and `'e\u{301}'` are equal Strings
    /// but different statements — and its hashing normalizes first, which for statements
    /// of a few kilobytes cost more than the rest of the lookup.
    struct Key: Hashable {
        let sql: String
        let types: [UInt32]

        init(sql: String, types: [UInt32]) {
            var sql = sql
            sql.makeContiguousUTF8()
            self.sql = sql
            self.types = types
        }

        // Read through `utf8`'s contiguous storage, which `init` ensures: `withUTF8` is
        // mutating and would copy (retain and release) each string per comparison.
        static func == (lhs: Key, rhs: Key) -> Bool {
            guard lhs.types == rhs.types, lhs.sql.utf8.count == rhs.sql.utf8.count else { return false }
            let same = lhs.sql.utf8.withContiguousStorageIfAvailable { l in
                rhs.sql.utf8.withContiguousStorageIfAvailable { r in l.count == 0 || memcmp(l.baseAddress!, r.baseAddress!, l.count) == 0 }
            }
            return (same ?? nil) ?? lhs.sql.utf8.elementsEqual(rhs.sql.utf8)
        }

        func hash(into hasher: inout Hasher) {
            let hashed: Void? = sql.utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
            if hashed == nil {
                Array(sql.utf8).withUnsafeBytes { hasher.combine(bytes: $0) }  // the same bytes, the same hash
            }
            hasher.combine(types)
        }
    }

    /// A class, so that `recent` and `entries` share it: a use found through `recent`
    /// marks the entry without hashing its key.
    private final class Entry {
        let name: String
        var lastUse: UInt64
        init(name: String, lastUse: UInt64) {
            self.name = name
            self.lastUse = lastUse
        }
    }

    let capacity: Int
    /// One dictionary, so that a hit hashes the statement's text once.
    private var entries: [Key: Entry] = [:]
    /// The last few statements found, compared byte for byte before the dictionary is
    /// asked. A connection runs the same few statements again and again (a loop; an
    /// order's plan setting, statement and transaction id), and comparing a statement's
    /// bytes costs a fraction of hashing them: for an order's 3 kB statement, hashing
    /// was most of a hit's cost. Replaced in turn, oldest first. Their lengths first:
    /// most statements that differ differ in length, and those are told apart at once.
    private var recent: [(length: Int, key: Key, entry: Entry)] = []
    private var nextRecent = 0
    private static let recentCapacity = 4
    private var clock: UInt64 = 0
    private var nextID = 0
    /// Statements evicted but not yet deallocated on the server.
    private(set) var evicted: [String] = []

    init(capacity: Int) { self.capacity = capacity }

    var isEnabled: Bool { capacity > 0 }

    /// The name of a statement already prepared for `key`, marking it used.
    mutating func lookup(_ key: Key) -> String? {
        clock += 1
        let length = key.sql.utf8.count
        for index in recent.indices where recent[index].length == length && recent[index].key == key {
            recent[index].entry.lastUse = clock
            return recent[index].entry.name
        }
        guard let entry = entries[key] else { return nil }
        entry.lastUse = clock
        if recent.count < Self.recentCapacity {
            recent.append((length, key, entry))
        } else {
            recent[nextRecent] = (length, key, entry)
            nextRecent = (nextRecent + 1) % Self.recentCapacity
        }
        return entry.name
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
        forgetRecent(key)
        entries[key] = nil
    }

    /// Drops `key`'s statement, whose plan the server can no longer use (a schema change
    /// altered its result's types): it is deallocated, and prepared anew on next use.
    mutating func invalidate(_ key: Key) {
        forgetRecent(key)
        guard let entry = entries.removeValue(forKey: key) else { return }
        evicted.append(entry.name)
    }

    /// A statement no longer prepared must not be found through `recent`.
    private mutating func forgetRecent(_ key: Key) {
        guard let index = recent.firstIndex(where: { $0.key == key }) else { return }
        recent.remove(at: index)
        nextRecent = 0
    }

    mutating func takeEvicted() -> [String] {
        defer { evicted = [] }
        return evicted
    }

    /// Forgets everything, e.g. after a reconnect or `DISCARD ALL`.
    mutating func reset() {
        entries = [:]
        evicted = []
        recent = []
        nextRecent = 0
    }

    var count: Int { entries.count }
}
