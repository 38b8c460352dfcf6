import Foundation
import NIOCore
import Testing
@testable import StockroomServer

/// The strict JSON reader that ORDER.PLACE uses, on its own, and `JSONField`'s messages.
@Suite("JSON reader")
struct JSONValueTests {
    func parse(_ text: String) throws(JSONValue.ParseError) -> JSONValue {
        try JSONValue.parse(Array(text.utf8))
    }

    func rejects(_ text: String) -> Bool {
        (try? parse(text)) == nil
    }

    @Test func readsEveryKindOfValue() throws {
        let value = try parse(#" {"a": [1, -2, 3.5e-2, 0, true, false, null], "b": {"c": "d"}, "e": {}, "f": []} "#)
        let expected = JSONValue.object([
            ("a", .array([.number("1"), .number("-2"), .number("3.5e-2"), .number("0"), .bool(true), .bool(false), .null])),
            ("b", .object([("c", .string("d"))])),
            ("e", .object([])),
            ("f", .array([])),
        ])
        #expect(value == expected)
        #expect(try parse("42") == .number("42"))
        #expect(try parse("\t\r\n\"x\" ") == .string("x"))
    }

    @Test func decodesEscapesAndUTF8() throws {
        #expect(try parse(#""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{8}\u{C}\n\r\t"))
        #expect(try parse(#""caf\u00e9 \u00E9""#) == .string("café é"))
        #expect(try parse(#""\ud83d\ude00 and \u0000""#) == .string("😀 and \u{0}"))
        #expect(try parse(#""raw café 😀""#) == .string("raw café 😀"))
        #expect(try parse(#""a\nb" "#) == .string("a\nb"))
    }

    @Test(arguments: [
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "[1 2]", "{\"a\" 1}", "{a:1}", "{'a':1}", "01", "-", "1.", ".5", "1e", "1e+",
        "+1", "0x10", "NaN", "Infinity", "tru", "nul", "True", "{} x", "[] []", "\"open", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"",
        "\"\\ud800\\u0041\"", "\"\\udc00\"", "\"tab\there\"", "\"line\nbreak\"", "// c\n1", "/* c */ 1", "[1] // c",
        "{\"a\":1,\"a\":2}",
    ])
    func rejectsWhatRFC8259Does(_ text: String) {
        #expect(rejects(text), "\(text.debugDescription) should not parse")
    }

    @Test func rejectsInvalidUTF8() throws {
        #expect((try? JSONValue.parse([0x22, 0xFF, 0x22])) == nil)
        #expect((try? JSONValue.parse([0x22, 0xC3, 0x22])) == nil, "a truncated two-byte sequence")
        #expect((try? JSONValue.parse([0x22, 0xED, 0xA0, 0x80, 0x22])) == nil, "a surrogate encoded in UTF-8")
        #expect(try JSONValue.parse([0x22, 0xC3, 0xA9, 0x22]) == .string("é"))
    }

    @Test func limitsNesting() throws {
        let deepest = String(repeating: "[", count: JSONValue.maxDepth) + String(repeating: "]", count: JSONValue.maxDepth)
        #expect(throws: Never.self) { try parse(deepest) }
        #expect(throws: JSONValue.ParseError.tooDeep) { try parse("[" + deepest + "]") }
        // Far deeper than any stack would take, if the parser did not stop early.
        #expect(throws: JSONValue.ParseError.tooDeep) { try parse(String(repeating: "{\"a\":", count: 100_000)) }
    }

    @Test func readsAByteBufferView() throws {
        let buffer = ByteBuffer(string: #"{"lines":[]}"#)
        #expect(try JSONValue.parse(buffer.readableBytesView) == .object([("lines", .array([]))]))
    }

    /// Random documents written by JSONSerialization read back as the same values.
    @Test func agreesWithJSONSerialization() throws {
        var random = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let original = Self.randomObject(depth: 0, using: &random)
            let data = try JSONSerialization.data(withJSONObject: original)
            let parsed = try JSONValue.parse(Array(data))
            #expect(Self.matches(parsed, original), "\(String(decoding: data, as: UTF8.self))")
        }
    }

    static func randomObject(depth: Int, using random: inout SystemRandomNumberGenerator) -> [String: Any] {
        var object: [String: Any] = [:]
        for _ in 0..<Int.random(in: 0...4, using: &random) {
            object[randomString(using: &random)] = randomValue(depth: depth + 1, using: &random)
        }
        return object
    }

    static func randomValue(depth: Int, using random: inout SystemRandomNumberGenerator) -> Any {
        switch Int.random(in: 0..<(depth < 4 ? 7 : 5), using: &random) {
        case 0: return NSNull()
        case 1: return Bool.random(using: &random)
        case 2: return Int64.random(in: Int64.min...Int64.max, using: &random)
        case 3: return randomString(using: &random)
        case 4: return Int.random(in: -9...9, using: &random)
        case 5: return (0..<Int.random(in: 0...3, using: &random)).map { _ in randomValue(depth: depth + 1, using: &random) }
        default: return randomObject(depth: depth, using: &random)
        }
    }

    /// Quotes, backslashes, control characters, accents, scripts and emoji.
    static func randomString(using random: inout SystemRandomNumberGenerator) -> String {
        let pieces = ["a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{1}", "\u{1F}", "é", "ß", "中", "😀", "\u{FFFF}", "\u{7F}"]
        return String((0..<Int.random(in: 0...8, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined())
    }

    static func matches(_ value: JSONValue, _ original: Any) -> Bool {
        switch value {
        case .null: return original is NSNull
        case .bool(let flag): return (original as? Bool) == flag && !(original is Int64)
        case .number(let text):
            if let number = original as? Int64 { return Int64(text) == number }
            if let number = original as? Int { return Int(text) == number }
            return false
        case .string(let text): return (original as? String) == text
        case .array(let elements):
            guard let others = original as? [Any], others.count == elements.count else { return false }
            return zip(elements, others).allSatisfy { matches($0, $1) }
        case .object(let members):
            guard let others = original as? [String: Any], others.count == members.count else { return false }
            return members.allSatisfy { member in others[member.key].map { matches(member.value, $0) } ?? false }
        }
    }

    // MARK: - JSONField

    func field(_ text: String) throws -> JSONField {
        JSONField(root: try parse(text))
    }

    func message(_ read: () throws -> Void) -> String? {
        do {
            try read()
            return nil
        } catch let error as CommandError {
            return error.message
        } catch {
            return "not a CommandError: \(error)"
        }
    }

    @Test func fieldsNameTheirPathInErrors() throws {
        let root = try field(#"{"lines":[{"product_id":7,"quantity":1.5},{"product_id":null}],"n":99999999999999999999,"m":-9223372036854775808}"#)
        #expect(try root["lines"].elements()[0]["product_id"].integer() == 7)
        #expect(try root["m"].integer() == Int64.min)
        #expect(message { _ = try root["lines"].elements()[0]["quantity"].integer() } == "lines[0].quantity: must be an integer")
        #expect(message { _ = try root["lines"].elements()[1]["product_id"].integer() } == "lines[1].product_id: must not be null")
        #expect(message { _ = try root["lines"].elements()[1]["quantity"].integer() } == "lines[1].quantity: is required")
        #expect(message { _ = try root["n"].integer() } == "n: is out of range")
        #expect(message { _ = try root["lines"].string() } == "lines: must be a string")
        #expect(message { _ = try root["lines"]["x"] } == "lines: must be an object")
        #expect(message { _ = try root["n"].elements() } == "n: must be an array")
        #expect(message { _ = try field("[]")["lines"] } == "json: must be an object")
        // A member that happens to be called json is not the document.
        #expect(message { _ = try field(#"{"json":{"a":"x"}}"#)["json"]["a"].integer() } == "json.a: must be an integer")
    }

    @Test func absentAndNullAreBothMissing() throws {
        let root = try field(#"{"a":null,"b":0}"#)
        #expect(try root["a"].isMissing)
        #expect(try root["absent"].isMissing)
        #expect(try !root["b"].isMissing)
    }
}
