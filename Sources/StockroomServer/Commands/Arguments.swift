import Foundation
import NIOCore

/// A request's arguments after the command name, with typed accessors that fail with
/// `INVALID` naming the field.
struct Arguments: Sendable {
    /// The whole request, command name first: a view past the name, not a copy of the
    /// rest (an array allocated per request).
    private let request: [ByteBuffer]

    init(request: [ByteBuffer]) {
        precondition(!request.isEmpty, "a request starts with the command name")
        self.request = request
    }

    var values: ArraySlice<ByteBuffer> { request.dropFirst() }

    var count: Int { request.count - 1 }

    /// The bytes of every argument, the name included.
    var byteCount: Int { request.reduce(0) { $0 + $1.readableBytes } }

    subscript(index: Int) -> ByteBuffer { request[index + 1] }

    func bytes(_ index: Int) -> [UInt8] {
        Array(self[index].readableBytesView)
    }

    func string(_ index: Int, field: String) throws(CommandError) -> String {
        guard let text = String(validating: self[index].readableBytesView, as: UTF8.self) else {
            throw .invalid(field, "must be UTF-8 text")
        }
        return text
    }

    /// An id: a positive integer; leading zeros allowed (`007` is 7).
    func id(_ index: Int, field: String = "id") throws(CommandError) -> Int64 {
        let text = try string(index, field: field)
        guard text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let value = Int64(text), value > 0 else {
            throw .invalid(field, "must be a positive integer")
        }
        return value
    }

    func integer(_ index: Int, field: String) throws(CommandError) -> Int {
        let text = try string(index, field: field)
        guard let value = Int(text) else { throw .invalid(field, "must be an integer") }
        return value
    }

    /// The argument as a parsed JSON document, for commands that read it field by field
    /// (see `JSONField`) instead of through Decodable.
    func json(_ index: Int) throws(CommandError) -> JSONField {
        do {
            return JSONField(root: try JSONValue.parse(self[index].readableBytesView))
        } catch .tooDeep {
            throw .invalid("json", "nests deeper than \(JSONValue.maxDepth) levels")
        } catch {
            throw .invalid("json", "not valid JSON")
        }
    }

    /// Trailing `NAME value` options (`AFTER 10 LIMIT 5`), names case-insensitive; each at
    /// most once, only from `allowed`.
    func options(from start: Int, allowed: Set<String>) throws(CommandError) -> [String: Int] {
        var options: [String: Int] = [:]
        var index = start
        while index < count {
            let name = try string(index, field: "option").uppercased()
            guard allowed.contains(name), options[name] == nil, index + 1 < count else {
                throw .syntax("syntax error: expected \(allowed.sorted().joined(separator: " | ")) <value>")
            }
            options[name] = index + 1
            index += 2
        }
        return options
    }
}

/// JSON out: snake_case field names, RFC 3339 UTC times, compact (so never a raw
/// CR or LF inside a `+` reply).
enum JSONPayload {
    static func encode(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        // Sorted keys: the same object always reads the same, byte for byte.
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        // Encoding our own models cannot fail; a failure is a bug worth crashing tests on.
        return String(decoding: try! encoder.encode(value), as: UTF8.self)
    }
}
