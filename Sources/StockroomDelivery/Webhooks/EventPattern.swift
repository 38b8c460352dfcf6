/// Redis-style globs over event types, as PSUBSCRIBE takes them: `*` any run of
/// characters, `?` one, anything else itself. Iterative, remembering only the last `*`,
/// so no pattern backtracks exponentially (patterns are at most 128 bytes anyway).
public enum EventPattern {
    public static let maxLength = 128
    public static let maxCount = 20

    public static func matches(_ pattern: String, _ type: String) -> Bool {
        let p = Array(pattern.utf8), t = Array(type.utf8)
        var i = 0, j = 0
        var star: Int?
        var resume = 0
        while j < t.count {
            if i < p.count, p[i] == UInt8(ascii: "*") {
                while i < p.count, p[i] == UInt8(ascii: "*") { i += 1 }
                star = i
                resume = j
            } else if i < p.count, p[i] == UInt8(ascii: "?") || p[i] == t[j] {
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

    public static func matchesAny(_ patterns: [String], _ type: String) -> Bool {
        patterns.contains { matches($0, type) }
    }
}
