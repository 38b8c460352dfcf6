import StockroomDelivery

/// Redis-style glob patterns for CONFIG GET: `*` matches any run of bytes, `?` one byte,
/// anything else itself, ASCII case-insensitively.
///
/// The pattern comes from a client and may be a megabyte of `*`: a recursive matcher
/// backtracks exponentially on `**…*#` and overflows the stack on a long one (Redis's
/// `stringmatchlen` has a nesting limit for the same reason). The matcher is PSUBSCRIBE's
/// (`EventPattern`), iterative and remembering only the last `*`: at most pattern × text
/// steps, and the texts are the server's own short key names, so linear in what the
/// client sent.
///
/// For matching one pattern against many keys, `Glob(pattern)` first collapses runs of
/// `*` and counts the other bytes: a pattern with more of them than a key has bytes
/// cannot match it, so a megabyte of pattern costs one pass, however many keys.
struct Glob {
    /// The pattern, runs of `*` collapsed to one.
    private let pattern: [UInt8]
    /// Bytes other than `*`: the shortest text the pattern can match.
    private let minimumLength: Int

    init(_ pattern: some Collection<UInt8>) {
        var collapsed: [UInt8] = []
        var literals = 0
        var previous: UInt8 = 0
        func add(_ byte: UInt8) {
            if byte == UInt8(ascii: "*") && previous == byte { return }
            collapsed.append(byte)
            if byte != UInt8(ascii: "*") { literals += 1 }
            previous = byte
        }
        let done: Void? = pattern.withContiguousStorageIfAvailable { bytes -> Void in for byte in bytes { add(byte) } }
        if done == nil {
            for byte in pattern { add(byte) }
        }
        self.pattern = collapsed
        self.minimumLength = literals
    }

    func matches(_ text: some Collection<UInt8>) -> Bool {
        text.count >= minimumLength && Self.matches(pattern, text)
    }

    static func matches(_ pattern: some Collection<UInt8>, _ text: some Collection<UInt8>) -> Bool {
        EventPattern.matches(pattern, text, ignoringASCIICase: true)
    }
}
