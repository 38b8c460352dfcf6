public import NIOCore

/// One reply. Results are simple strings of compact JSON; the other RESP types appear
/// only where Redis's own commands require them.
public enum Reply: Sendable, Equatable {
    /// `+text` — for JSON results and statuses (OK, PONG). Never holds CR or LF.
    case simple(String)
    /// `-CODE message`.
    case error(code: String, message: String)
    case integer(Int)
    /// `$n` bytes, or the null bulk string.
    case bulk([UInt8]?)
    case array([Reply])
    /// A RESP3 map; a flat array of keys and values in RESP2.
    case map([(Reply, Reply)])
    /// RESP3 null; the null bulk string in RESP2.
    case null
    /// A RESP3 push (`>`), out of band: pub/sub messages and (un)subscribe
    /// confirmations. An array in RESP2, where a subscribed connection gets nothing else.
    case push([Reply])
    /// Several replies to one request, one after the other: SUBSCRIBE a b confirms each.
    case sequence([Reply])

    public static let ok = Reply.simple("OK")

    public static func bulk(_ text: String) -> Reply { .bulk(Array(text.utf8)) }

    public static func == (a: Reply, b: Reply) -> Bool {
        switch (a, b) {
        case (.simple(let x), .simple(let y)): x == y
        case (.error(let c1, let m1), .error(let c2, let m2)): c1 == c2 && m1 == m2
        case (.integer(let x), .integer(let y)): x == y
        case (.bulk(let x), .bulk(let y)): x == y
        case (.array(let x), .array(let y)): x == y
        case (.map(let x), .map(let y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        case (.null, .null): true
        case (.push(let x), .push(let y)): x == y
        case (.sequence(let x), .sequence(let y)): x == y
        default: false
        }
    }

    /// Appends the reply in RESP2 (`protocolVersion` 2) or RESP3 (3).
    public func write(to buffer: inout ByteBuffer, protocolVersion: Int) {
        switch self {
        case .simple(let text):
            buffer.writeStaticString("+")
            buffer.writeString(Self.singleLine(text))
            buffer.writeStaticString("\r\n")
        case .error(let code, let message):
            buffer.writeStaticString("-")
            buffer.writeString(code)
            buffer.writeStaticString(" ")
            buffer.writeString(Self.singleLine(message))
            buffer.writeStaticString("\r\n")
        case .integer(let value):
            buffer.writeString(":\(value)\r\n")
        case .bulk(let bytes?):
            buffer.writeString("$\(bytes.count)\r\n")
            buffer.writeBytes(bytes)
            buffer.writeStaticString("\r\n")
        case .bulk(nil):
            buffer.writeStaticString("$-1\r\n")
        case .null:
            if protocolVersion >= 3 { buffer.writeStaticString("_\r\n") } else { buffer.writeStaticString("$-1\r\n") }
        case .array(let elements):
            buffer.writeString("*\(elements.count)\r\n")
            for element in elements { element.write(to: &buffer, protocolVersion: protocolVersion) }
        case .push(let elements):
            buffer.writeString("\(protocolVersion >= 3 ? ">" : "*")\(elements.count)\r\n")
            for element in elements { element.write(to: &buffer, protocolVersion: protocolVersion) }
        case .sequence(let replies):
            for reply in replies { reply.write(to: &buffer, protocolVersion: protocolVersion) }
        case .map(let pairs):
            buffer.writeString(protocolVersion >= 3 ? "%\(pairs.count)\r\n" : "*\(pairs.count * 2)\r\n")
            for (key, value) in pairs {
                key.write(to: &buffer, protocolVersion: protocolVersion)
                value.write(to: &buffer, protocolVersion: protocolVersion)
            }
        }
    }

    /// Simple strings and errors end at the first CR or LF; any inside become spaces.
    static func singleLine(_ text: String) -> String {
        // Over the contiguous bytes: scanning the UTF-8 view index by index cost a fifth
        // of writing a PRODUCT.GET reply.
        var bytes = text
        guard bytes.withUTF8({ $0.contains { $0 == 0x0D || $0 == 0x0A } }) else { return text }
        return String(text.map { $0 == "\r" || $0 == "\n" || $0 == "\r\n" ? " " : $0 })
    }
}
