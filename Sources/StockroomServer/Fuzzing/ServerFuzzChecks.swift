import NIOCore

/// The invariants the fuzz targets (`Fuzz/`) hold the protocol's parsers to, callable from
/// the libFuzzer harnesses and from the tests that replay the committed corpus. Each
/// returns nil when every invariant holds, or what broke. Not API: SPI for those two.
@_spi(Fuzzing) public enum ServerFuzzChecks {
    /// Small limits, so inputs of a few hundred bytes reach every limit.
    static let limits: ProtocolLimits = {
        var limits = ProtocolLimits()
        limits.maxInlineLength = 256
        limits.maxArguments = 16
        limits.maxArgumentLength = 256
        limits.maxRequestLength = 1024
        return limits
    }()

    /// The request parser: parsing the bytes whole or in chunks gives the same requests
    /// and the same error; every request is within the limits; a request written back as
    /// RESP parses to itself.
    public static func requestParser(_ bytes: [UInt8]) -> String? {
        let whole = parse(bytes, chunk: bytes.count)
        let chunk = 1 + Int(bytes.first ?? 0) % 7
        let pieces = parse(bytes, chunk: chunk)
        guard whole.requests == pieces.requests, whole.error == pieces.error else {
            return "fed in chunks of \(chunk) bytes: \(pieces), whole: \(whole)"
        }
        for request in whole.requests {
            guard !request.isEmpty else { return "an empty request" }
            guard request.count <= limits.maxArguments else { return "\(request.count) arguments" }
            guard request.allSatisfy({ $0.count <= limits.maxArgumentLength }) else { return "an argument over the limit" }
            let again = parse(resp(request), chunk: Int.max)
            guard again.requests == [request], again.error == nil else { return "\(request) written as RESP parsed as \(again)" }
        }
        return nil
    }

    /// The inline splitter: arguments written back quoted split to themselves.
    public static func inlineArguments(_ bytes: [UInt8]) -> String? {
        guard let arguments = InlineArguments.split(bytes[...]) else { return nil }
        let line = arguments.map(quoted).joined(separator: [0x20])
        guard let again = InlineArguments.split(ArraySlice(line)) else { return "\(arguments) quoted did not split" }
        guard again == arguments else { return "\(arguments) quoted split as \(again)" }
        return nil
    }

    /// The strict JSON parser: a document it accepts, written back compactly, parses to
    /// the same value; nesting never passes the limit.
    public static func json(_ bytes: [UInt8]) -> String? {
        guard let value = try? JSONValue.parse(bytes) else { return nil }
        guard depth(value) <= JSONValue.maxDepth else { return "nested \(depth(value)) deep" }
        let text = write(value)
        guard let again = try? JSONValue.parse(text.utf8) else { return "\(text) did not parse again" }
        guard again == value else { return "\(text) parsed as another value" }
        return nil
    }

    // MARK: - Helpers

    private struct Parsed: Equatable, CustomStringConvertible {
        var requests: [[[UInt8]]] = []
        var error: ProtocolError?
        var description: String { "\(requests.count) requests, error \(error?.reason ?? "none")" }
    }

    private static func parse(_ bytes: [UInt8], chunk: Int) -> Parsed {
        var parser = RequestParser(limits: limits)
        var buffer = ByteBuffer()
        var parsed = Parsed()
        var offset = 0
        repeat {
            let end = min(bytes.count, offset + max(1, min(chunk, bytes.count)))
            buffer.writeBytes(bytes[offset..<end])
            offset = end
            do {
                while let request = try parser.next(&buffer) {
                    parsed.requests.append(request.map { Array($0.readableBytesView) })
                }
            } catch {
                parsed.error = error
                return parsed
            }
        } while offset < bytes.count
        return parsed
    }

    private static func resp(_ request: [[UInt8]]) -> [UInt8] {
        var out = Array("*\(request.count)\r\n".utf8)
        for argument in request { out += Array("$\(argument.count)\r\n".utf8) + argument + [0x0D, 0x0A] }
        return out
    }

    private static func quoted(_ argument: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "\"")]
        for byte in argument {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), byte]
            case 0x20...0x7E: out.append(byte)
            default: out += Array(String(format: byte).utf8)
            }
        }
        out.append(UInt8(ascii: "\""))
        return out
    }

    private static func depth(_ value: JSONValue) -> Int {
        switch value {
        case .array(let elements): 1 + (elements.map(depth).max() ?? 0)
        case .object(let members): 1 + (members.map { depth($0.value) }.max() ?? 0)
        default: 0
        }
    }

    private static func write(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool(let flag): flag ? "true" : "false"
        case .number(let text): text
        case .string(let text): string(text)
        case .array(let elements): "[" + elements.map(write).joined(separator: ",") + "]"
        case .object(let members): "{" + members.map { string($0.key) + ":" + write($0.value) }.joined(separator: ",") + "}"
        }
    }

    private static func string(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count) + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

private extension String {
    /// `\xHH`, the inline splitter's escape for any byte.
    init(format byte: UInt8) {
        let hex = String(byte, radix: 16)
        self = "\\x" + (hex.count == 1 ? "0" + hex : hex)
    }
}
