@testable import LibPQ
import Testing

/// The statement cache is a plain value: its eviction order is tested without a server.
@Suite struct StatementCacheTests {
    private func key(_ sql: String) -> StatementCache.Key { .init(sql: sql, types: [23]) }

    @Test func theLeastRecentlyUsedStatementIsEvictedWhenAnotherWasUsedThroughTheRecentOnes() {
        var cache = StatementCache(capacity: 2)
        cache.insert(key("SELECT 1"), name: "a")
        #expect(cache.lookup(key("SELECT 1")) == "a")  // found in the dictionary, kept as recent
        cache.insert(key("SELECT 2"), name: "b")
        // Used again after "b" was prepared, found among the recent ones.
        #expect(cache.lookup(key("SELECT 1")) == "a")
        cache.insert(key("SELECT 3"), name: "c")
        #expect(cache.takeEvicted() == ["b"])
        #expect(cache.lookup(key("SELECT 1")) == "a")
        #expect(cache.lookup(key("SELECT 2")) == nil)
        #expect(cache.lookup(key("SELECT 3")) == "c")
    }

    @Test func aRecentStatementIsForgottenWhenItIsInvalidatedOrTheCacheIsReset() {
        var cache = StatementCache(capacity: 4)
        cache.insert(key("SELECT 1"), name: "a")
        #expect(cache.lookup(key("SELECT 1")) == "a")
        cache.invalidate(key("SELECT 1"))
        #expect(cache.lookup(key("SELECT 1")) == nil)
        #expect(cache.takeEvicted() == ["a"])

        cache.insert(key("SELECT 2"), name: "b")
        #expect(cache.lookup(key("SELECT 2")) == "b")
        cache.reset()
        #expect(cache.lookup(key("SELECT 2")) == nil)
        #expect(cache.count == 0)
    }

    @Test func theFastPathTellsStatementsApartByTheirParameterTypesAndBytes() {
        var cache = StatementCache(capacity: 4)
        cache.insert(.init(sql: "SELECT $1", types: [23]), name: "int")
        cache.insert(.init(sql: "SELECT $1", types: [25]), name: "text")
        #expect(cache.lookup(.init(sql: "SELECT $1", types: [23])) == "int")
        #expect(cache.lookup(.init(sql: "SELECT $1", types: [25])) == "text")
        // Canonically equivalent Strings, different bytes: different statements.
        cache.insert(.init(sql: "SELECT 'é'", types: []), name: "composed")
        #expect(cache.lookup(.init(sql: "SELECT 'é'", types: [])) == "composed")
        #expect(cache.lookup(.init(sql: "SELECT 'e\u{301}'", types: [])) == nil)
        // The same length, one byte apart.
        cache.insert(.init(sql: "SELECT 'a'", types: []), name: "a")
        #expect(cache.lookup(.init(sql: "SELECT 'a'", types: [])) == "a")
        #expect(cache.lookup(.init(sql: "SELECT 'b'", types: [])) == nil)
    }
}

extension StatementCacheTests {
    /// Against a plain least-recently-used list, over random lookups, inserts and
    /// invalidations of a few more statements than fit: the recent-statements fast path
    /// must never change which statement is evicted.
    @Test func evictsExactlyAsAPlainLeastRecentlyUsedListWould() {
        var random = SplitMix(seed: 20261205)
        var cache = StatementCache(capacity: 6)
        var model: [String] = []  // least recently used first
        var names: [String: String] = [:]
        for step in 0..<20_000 {
            let sql = "SELECT \(random.next() % 10)"
            switch random.next() % 10 {
            case 0:
                cache.invalidate(key(sql))
                if let index = model.firstIndex(of: sql) {
                    model.remove(at: index)
                    #expect(cache.takeEvicted() == [names[sql]!], "step \(step)")
                }
            default:
                let found = cache.lookup(key(sql))
                if let index = model.firstIndex(of: sql) {
                    #expect(found == names[sql], "step \(step)")
                    model.append(model.remove(at: index))
                } else {
                    #expect(found == nil, "step \(step)")
                    let name = cache.nextName()
                    cache.insert(key(sql), name: name)
                    names[sql] = name
                    if model.count == 6 {
                        #expect(cache.takeEvicted() == [names[model.removeFirst()]!], "step \(step)")
                    }
                    model.append(sql)
                }
            }
            #expect(cache.count == model.count)
        }
    }
}

private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
