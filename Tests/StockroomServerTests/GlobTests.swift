import Testing
@testable import StockroomServer

@Suite("CONFIG GET globs (no I/O)")
struct GlobTests {
    /// The textbook recursive matcher: exponential, but right, for short inputs.
    private func reference(_ p: [UInt8], _ t: [UInt8]) -> Bool {
        guard let first = p.first else { return t.isEmpty }
        if first == UInt8(ascii: "*") { return (0...t.count).contains { reference(Array(p.dropFirst()), Array(t.dropFirst($0))) } }
        guard let head = t.first, first == UInt8(ascii: "?") || first == head else { return false }
        return reference(Array(p.dropFirst()), Array(t.dropFirst()))
    }

    @Test func agreesWithTheRecursiveMatcherOnEveryShortPattern() {
        let alphabet = Array("ab*?".utf8)
        let texts = ["", "a", "b", "ab", "ba", "aab", "abab", "bbba"].map { Array($0.utf8) }
        var patterns: [[UInt8]] = [[]]
        for _ in 0..<5 { patterns += patterns.flatMap { p in alphabet.map { p + [$0] } }.filter { $0.count <= 5 } }
        for pattern in Set(patterns) {
            for text in texts where Glob(pattern).matches(text) != reference(pattern, text) {
                Issue.record("'\(String(decoding: pattern, as: UTF8.self))' on '\(String(decoding: text, as: UTF8.self))'")
            }
        }
    }

    @Test func caseDoesNotMatterAndLongPatternsCostOnePass() {
        #expect(Glob(Array("MAX*".utf8)).matches(Array("maxclients".utf8)))
        #expect(!Glob(Array((String(repeating: "*", count: 100_000) + "#").utf8)).matches(Array("maxclients".utf8)))
        #expect(Glob(Array(String(repeating: "*", count: 1 << 20).utf8)).matches(Array("timeout".utf8)))
        #expect(!Glob(Array((String(repeating: "*a", count: 100_000)).utf8)).matches(Array("aaaa".utf8)), "more literal bytes than the key has")
    }
}
