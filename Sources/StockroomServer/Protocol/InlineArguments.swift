/// Splits an inline request line into arguments with Redis's rules (`sdssplitargs`):
/// arguments are separated by spaces; `"…"` arguments understand `\"`, `\\`, `\n`, `\r`,
/// `\t`, `\b`, `\a` and `\xHH`; `'…'` arguments understand `\'`; a closing quote must be
/// followed by a space or the end of the line.
///
/// One addition for people typing JSON: an argument that starts with `{` or `[` takes the
/// rest of the line verbatim, so `USER.REGISTER {"email": "ann@example.com"}` is two
/// arguments, however many spaces and quotes the JSON holds.
enum InlineArguments {
    /// nil when quotes are unbalanced.
    static func split(_ line: ArraySlice<UInt8>) -> [[UInt8]]? {
        var arguments: [[UInt8]] = []
        var i = line.startIndex
        let end = line.endIndex
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A || byte == 0x0B || byte == 0x0C }
        while true {
            while i < end, isSpace(line[i]) { i += 1 }
            guard i < end else { return arguments }
            if line[i] == UInt8(ascii: "{") || line[i] == UInt8(ascii: "[") {
                arguments.append(Array(line[i..<end]))
                return arguments
            }
            var current: [UInt8] = []
            var inDouble = false
            var inSingle = false
            while true {
                if inDouble {
                    guard i < end else { return nil }
                    let c = line[i]
                    if c == UInt8(ascii: "\\"), i + 3 < end, line[i + 1] == UInt8(ascii: "x"), let high = hex(line[i + 2]), let low = hex(line[i + 3]) {
                        current.append(high << 4 | low)
                        i += 4
                        continue
                    }
                    if c == UInt8(ascii: "\\"), i + 1 < end {
                        let escaped = line[i + 1]
                        switch escaped {
                        case UInt8(ascii: "n"): current.append(0x0A)
                        case UInt8(ascii: "r"): current.append(0x0D)
                        case UInt8(ascii: "t"): current.append(0x09)
                        case UInt8(ascii: "b"): current.append(0x08)
                        case UInt8(ascii: "a"): current.append(0x07)
                        default: current.append(escaped)
                        }
                        i += 2
                        continue
                    }
                    if c == UInt8(ascii: "\"") {
                        // The closing quote must end the argument.
                        if i + 1 < end, !isSpace(line[i + 1]) { return nil }
                        i += 1
                        break
                    }
                    current.append(c)
                    i += 1
                } else if inSingle {
                    guard i < end else { return nil }
                    let c = line[i]
                    if c == UInt8(ascii: "\\"), i + 1 < end, line[i + 1] == UInt8(ascii: "'") {
                        current.append(UInt8(ascii: "'"))
                        i += 2
                        continue
                    }
                    if c == UInt8(ascii: "'") {
                        if i + 1 < end, !isSpace(line[i + 1]) { return nil }
                        i += 1
                        break
                    }
                    current.append(c)
                    i += 1
                } else {
                    guard i < end else { break }
                    let c = line[i]
                    if isSpace(c) { break }
                    if c == UInt8(ascii: "\"") { inDouble = true; i += 1; continue }
                    if c == UInt8(ascii: "'") { inSingle = true; i += 1; continue }
                    current.append(c)
                    i += 1
                }
            }
            arguments.append(current)
        }
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
