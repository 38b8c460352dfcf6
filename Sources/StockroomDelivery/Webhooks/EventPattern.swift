/// Redis-style globs over event types, as PSUBSCRIBE takes them: `*` any run of
/// characters, `?` one, anything else itself. Iterative, remembering only the last `*`,
/// so no pattern backtracks exponentially (patterns are at most 128 bytes anyway).
public enum EventPattern {
    public static let maxLength = 128
    public static let maxCount = 20

    public static func matches(_ pattern: String, _ type: String) -> Bool {
        matches(pattern.utf8, type.utf8)
    }

    /// The matcher itself, over bytes; CONFIG GET's patterns use it too, with
    /// `ignoringASCIICase`. At most pattern × text steps: on a mismatch it retries from
    /// one byte further after the last `*`, never from earlier ones, which is enough since
    /// a later star can absorb whatever an earlier one would have.
    public static func matches(_ pattern: some Collection<UInt8>, _ text: some Collection<UInt8>, ignoringASCIICase: Bool = false) -> Bool {
        let p = Array(pattern), t = Array(text)
        func same(_ a: UInt8, _ b: UInt8) -> Bool {
            a == b || (ignoringASCIICase && lower(a) == lower(b))
        }
        var i = 0, j = 0
        var star: Int?   // index in p just after the last `*` seen
        var resume = 0   // where in t that star's match would end if we backtrack
        while j < t.count {
            if i < p.count, p[i] == UInt8(ascii: "*") {
                while i < p.count, p[i] == UInt8(ascii: "*") { i += 1 }
                star = i
                resume = j
            } else if i < p.count, p[i] == UInt8(ascii: "?") || same(p[i], t[j]) {
                i += 1
                j += 1
            } else if let after = star {
                resume += 1
                i = after
                j = resume
            } else {
                return false
            }
        }
        while i < p.count, p[i] == UInt8(ascii: "*") { i += 1 }
        return i == p.count
    }

    private static func lower(_ byte: UInt8) -> UInt8 {
        (0x41...0x5A).contains(byte) ? byte | 0x20 : byte
    }

    public static func matchesAny(_ patterns: [String], _ type: String) -> Bool {
        patterns.contains { matches($0, type) }
    }
}
