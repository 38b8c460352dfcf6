/// A parsed JSON document, for payloads on the hot path.
///
/// ORDER.PLACE is the busiest command that carries JSON, and Foundation's JSONDecoder
/// spent about a twelfth of the service's CPU per order on it: generic containers, a
/// metadata lookup per key. This reader is strict RFC 8259 — no trailing commas, comments,
/// leading zeros, raw control characters, lone surrogates or invalid UTF-8 — and keeps
/// numbers as their text, so a caller decides what fits (`JSONField.integer`).
///
/// Object members keep their order; a key given twice is rejected, rather than letting one
/// copy silently win as decoders disagree on which.
enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// The number as written: `-12`, `3.5e2`.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    /// Containers nested deeper than this are refused: the parser recurses, and a client
    /// must not choose how deep.
    static let maxDepth = 32

    enum ParseError: Error, Equatable {
        case invalid
        case tooDeep
    }

    /// Parses one document: a value with only whitespace around it.
    static func parse(_ bytes: some Collection<UInt8>) throws(ParseError) -> JSONValue {
        let result: Result<JSONValue, ParseError>? = bytes.withContiguousStorageIfAvailable { buffer in
            var parser = JSONParser(buffer)
            return Result { () throws(ParseError) in try parser.document() }
        }
        if let result { return try result.get() }
        return try parse(Array(bytes))
    }

    static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.number(let a), .number(let b)): a == b
        case (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: false
        }
    }
}

/// A recursive-descent parser over contiguous bytes.
private struct JSONParser {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private var depth = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    mutating func document() throws(JSONValue.ParseError) -> JSONValue {
        let value = try self.value()
        skipWhitespace()
        guard index == bytes.count else { throw .invalid }
        return value
    }

    private mutating func value() throws(JSONValue.ParseError) -> JSONValue {
        skipWhitespace()
        guard let byte = peek() else { throw .invalid }
        switch byte {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default: return .number(try number())
        }
    }

    private mutating func object() throws(JSONValue.ParseError) -> JSONValue {
        try enter()
        index += 1  // {
        var members: [(key: String, value: JSONValue)] = []
        // Keys seen, once there are enough that scanning the members costs more than
        // hashing: a payload of 60,000 keys must not cost 60,000² comparisons.
        var keys: Set<String>?
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw .invalid }
            let key = try string()
            skipWhitespace()
            guard take() == UInt8(ascii: ":") else { throw .invalid }
            let value = try self.value()
            if keys != nil {
                guard keys!.insert(key).inserted else { throw .invalid }
            } else {
                // Payloads have a handful of keys: a short scan beats hashing each one.
                guard !members.contains(where: { $0.key == key }) else { throw .invalid }
                if members.count == 8 { keys = Set(members.map(\.key) + [key]) }
            }
            members.append((key, value))
            skipWhitespace()
            switch take() {
            case UInt8(ascii: ","): continue
            case UInt8(ascii: "}"):
                depth -= 1
                return .object(members)
            default: throw .invalid
            }
        }
    }

    private mutating func array() throws(JSONValue.ParseError) -> JSONValue {
        try enter()
        index += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if peek() == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            elements.append(try value())
            skipWhitespace()
            switch take() {
            case UInt8(ascii: ","): continue
            case UInt8(ascii: "]"):
                depth -= 1
                return .array(elements)
            default: throw .invalid
            }
        }
    }

    private mutating func enter() throws(JSONValue.ParseError) {
        depth += 1
        guard depth <= JSONValue.maxDepth else { throw .tooDeep }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    private mutating func number() throws(JSONValue.ParseError) -> String {
        let start = index
        if peek() == UInt8(ascii: "-") { index += 1 }
        guard let first = peek(), isDigit(first) else { throw .invalid }
        index += 1
        if first != UInt8(ascii: "0") { skipDigits() }
        if peek() == UInt8(ascii: ".") {
            index += 1
            try requireDigits()
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            try requireDigits()
        }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
    }

    private mutating func requireDigits() throws(JSONValue.ParseError) {
        guard let byte = peek(), isDigit(byte) else { throw .invalid }
        skipDigits()
    }

    private mutating func skipDigits() {
        while let byte = peek(), isDigit(byte) { index += 1 }
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private mutating func string() throws(JSONValue.ParseError) -> String {
        index += 1  // "
        let start = index
        // The common case, no escapes: one validated copy of the bytes.
        while let byte = peek(), byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") {
            guard byte >= 0x20 else { throw .invalid }
            index += 1
        }
        guard let stop = peek() else { throw .invalid }
        var text = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        if stop == UInt8(ascii: "\\") { try unescape(into: &text) }
        index += 1  // "
        guard let string = String(validating: text, as: UTF8.self) else { throw .invalid }
        return string
    }

    /// The rest of a string that has escapes, from the first backslash to the closing quote.
    private mutating func unescape(into text: inout [UInt8]) throws(JSONValue.ParseError) {
        while let byte = take() {
            switch byte {
            case UInt8(ascii: "\""):
                index -= 1
                return
            case UInt8(ascii: "\\"):
                guard let escaped = take() else { throw .invalid }
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): text.append(escaped)
                case UInt8(ascii: "b"): text.append(0x08)
                case UInt8(ascii: "f"): text.append(0x0C)
                case UInt8(ascii: "n"): text.append(0x0A)
                case UInt8(ascii: "r"): text.append(0x0D)
                case UInt8(ascii: "t"): text.append(0x09)
                case UInt8(ascii: "u"): append(try unicodeScalar(), to: &text)
                default: throw .invalid
                }
            case 0..<0x20:
                throw .invalid
            default:
                text.append(byte)
            }
        }
        throw .invalid
    }

    /// After `\u`: four hex digits, or a surrogate pair written as two escapes.
    private mutating func unicodeScalar() throws(JSONValue.ParseError) -> Unicode.Scalar {
        let unit = try hex4()
        switch unit {
        case 0xD800..<0xDC00:
            guard take() == UInt8(ascii: "\\"), take() == UInt8(ascii: "u") else { throw .invalid }
            let low = try hex4()
            guard (0xDC00..<0xE000).contains(low) else { throw .invalid }
            return Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))!
        case 0xDC00..<0xE000:
            throw .invalid
        default:
            return Unicode.Scalar(unit)!
        }
    }

    private mutating func hex4() throws(JSONValue.ParseError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let byte = take() else { throw .invalid }
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw .invalid
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    private func append(_ scalar: Unicode.Scalar, to text: inout [UInt8]) {
        text.append(contentsOf: UTF8.encode(scalar)!)
    }

    private mutating func literal(_ word: StaticString) throws(JSONValue.ParseError) {
        let length = word.utf8CodeUnitCount
        guard bytes.count - index >= length,
              UnsafeBufferPointer(rebasing: bytes[index..<index + length]).elementsEqual(UnsafeBufferPointer(start: word.utf8Start, count: length))
        else { throw .invalid }
        index += length
    }

    private mutating func skipWhitespace() {
        while let byte = peek(), byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
    }

    private func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func take() -> UInt8? {
        guard index < bytes.count else { return nil }
        defer { index += 1 }
        return bytes[index]
    }
}
