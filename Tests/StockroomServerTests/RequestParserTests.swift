import NIOCore
import Testing
@testable import StockroomServer

/// The parser on its own, byte by byte: Redis's `tests/unit/protocol.tcl` cases and our
/// limits, without a socket.
@Suite("Request parser")
struct RequestParserTests {
    func parse(_ text: String, limits: ProtocolLimits = ProtocolLimits()) throws(ProtocolError) -> [[String]] {
        var buffer = ByteBuffer(string: text)
        var requests: [[String]] = []
        var parser = RequestParser(limits: limits)
        while let request = try parser.next(&buffer) {
            requests.append(request.map { String(buffer: $0) })
        }
        return requests
    }

    func error(_ text: String, limits: ProtocolLimits = ProtocolLimits()) -> String? {
        do {
            _ = try parse(text, limits: limits)
            return nil
        } catch {
            return error.description
        }
    }

    @Test func respArraysAndInlineLinesGiveTheSameArguments() throws {
        let resp = try parse("*3\r\n$11\r\nPRODUCT.GET\r\n$3\r\nSKU\r\n$6\r\nMUG-01\r\n")
        let inline = try parse("PRODUCT.GET SKU MUG-01\r\n")
        let quoted = try parse("PRODUCT.GET \"SKU\" 'MUG-01'\n")
        #expect(resp == [["PRODUCT.GET", "SKU", "MUG-01"]])
        #expect(inline == resp && quoted == resp)
    }

    @Test func incompleteRequestsWaitAndConsumeNothing() throws {
        var parser = RequestParser()
        let whole = "*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\nPING\r\n"
        var buffer = ByteBuffer()
        var seen: [[String]] = []
        for byte in whole.utf8 {
            buffer.writeInteger(byte)
            while let request = try parser.next(&buffer) { seen.append(request.map { String(buffer: $0) }) }
        }
        #expect(seen == [["ECHO", "hello"], ["PING"]])
        #expect(buffer.readableBytes == 0)
    }

    /// One parser serves a connection's requests one after another and keeps its list of
    /// argument offsets between them: a short request after a long one, after one cut
    /// off by an error, and one arriving a byte at a time after those, each get exactly
    /// their own arguments.
    @Test func eachRequestGetsOnlyItsOwnArguments() throws {
        func resp(_ arguments: [String]) -> String {
            "*\(arguments.count)\r\n" + arguments.map { "$\($0.utf8.count)\r\n\($0)\r\n" }.joined()
        }
        var parser = RequestParser()
        let long = (0..<100).map { "a\($0)" }
        var buffer = ByteBuffer(string: resp(long) + resp(["PING"]) + resp(["ECHO", "x"]))
        #expect(try parser.next(&buffer)?.map { String(buffer: $0) } == long)
        #expect(try parser.next(&buffer)?.map { String(buffer: $0) } == ["PING"])
        #expect(try parser.next(&buffer)?.map { String(buffer: $0) } == ["ECHO", "x"])

        // Two arguments in, then a broken header: the next request starts clean. (The
        // connection is closed after a protocol error; the parser must not care.)
        buffer = ByteBuffer(string: "*3\r\n$1\r\na\r\n$1\r\nb\r\n!x\r\n")
        #expect(throws: ProtocolError.self) { try parser.next(&buffer) }
        buffer = ByteBuffer()
        var seen: [[String]] = []
        for byte in resp(["SET", "k", "v"]).utf8 {
            buffer.writeInteger(byte)
            while let request = try parser.next(&buffer) { seen.append(request.map { String(buffer: $0) }) }
        }
        #expect(seen == [["SET", "k", "v"]])
    }

    @Test func inlineQuotingFollowsRedis() throws {
        #expect(try parse("SET \"a b\" 'c d'\r\n") == [["SET", "a b", "c d"]])
        #expect(try parse(#"ECHO "tab\there \"q\" back\\slash \x41\x62""# + "\n") == [["ECHO", "tab\there \"q\" back\\slash Ab"]])
        #expect(try parse("ECHO 'it\\'s'\n") == [["ECHO", "it's"]])
        #expect(try parse("ECHO \"\"\n") == [["ECHO", ""]])
        #expect(try parse("  PING   \r\n\r\n\n") == [["PING"]], "blank lines are ignored")
        #expect(error("SET \"\"\"test-key\"\"\" test-value\r\n") == "Protocol error: unbalanced quotes in request")
        #expect(error("ECHO \"open\r\n") == "Protocol error: unbalanced quotes in request")
        #expect(error("ECHO 'x'y\n") == "Protocol error: unbalanced quotes in request")
    }

    @Test func jsonArgumentsTakeTheRestOfTheLine() throws {
        let json = #"{"email":"ann@example.com","name":"Ann Lee","password":"it's \"secret\""}"#
        #expect(try parse("USER.REGISTER \(json)\r\n") == [["USER.REGISTER", json]])
        #expect(try parse("ORDER.PLACE [1, 2]\n") == [["ORDER.PLACE", "[1, 2]"]])
        #expect(try parse("PRODUCT.UPDATE 7 {\"name\": \"Mug 'XL'\"}\n") == [["PRODUCT.UPDATE", "7", "{\"name\": \"Mug 'XL'\"}"]])
    }

    @Test func malformedRespFromProtocolTcl() throws {
        #expect(try parse("*-10\r\nPING\r\n") == [["PING"]], "a negative multibulk length is ignored")
        #expect(try parse("*0\r\nPING\r\n") == [["PING"]])
        #expect(error("*3000000000\r\n") == "Protocol error: invalid multibulk length")
        #expect(error("*20000000\r\n") == "Protocol error: invalid multibulk length")
        #expect(error("*blabla\r\n") == "Protocol error: invalid multibulk length")
        #expect(error("*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n") == "Protocol error: expected '$', got 'f'")
        #expect(error("*1\r\nfoo=bar\r\n") == "Protocol error: expected '$', got 'f'")
        #expect(error("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n") == "Protocol error: invalid bulk length")
        #expect(error("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n") == "Protocol error: invalid bulk length")
        #expect(error("*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n")?.hasPrefix("Protocol error: invalid bulk length") == true)
        #expect(error("*1\r\n$4\r\nPINGxx") == "Protocol error: expected CRLF after a bulk string")
    }

    @Test func limitsAreEnforcedWhileParsing() {
        var limits = ProtocolLimits()
        limits.maxInlineLength = 1024
        limits.maxArguments = 4
        limits.maxArgumentLength = 16
        // A line that never ends is refused once it passes the limit, before it is complete.
        #expect(error(String(repeating: "x", count: 1025), limits: limits) == "Protocol error: too big inline request")
        #expect(error("*" + String(repeating: "1", count: 1030), limits: limits) == "Protocol error: too big mbulk count string")
        #expect(error("*5\r\n", limits: limits)?.hasPrefix("Protocol error: too many arguments") == true)
        #expect(error("a b c d e\n", limits: limits)?.hasPrefix("Protocol error: too many arguments") == true)
        #expect(error("*1\r\n$17\r\n", limits: limits)?.hasPrefix("Protocol error: invalid bulk length") == true)
        #expect(error("*1\r\n$16\r\n0123456789abcdef\r\n", limits: limits) == nil)
    }

    @Test func httpRequestLinesAreRefused() {
        #expect(error("GET / HTTP/1.1\r\nHost: x\r\n\r\n") == "Protocol error: HTTP requests are not supported")
        #expect(error("POST /x HTTP/1.0\r\n") == "Protocol error: HTTP requests are not supported")
    }

    @Test func binaryArgumentsSurviveResp() throws {
        var buffer = ByteBuffer(string: "*2\r\n$4\r\nECHO\r\n$4\r\n")
        buffer.writeBytes([0x00, 0x0D, 0x0A, 0xFF])
        buffer.writeString("\r\n")
        let request = try #require(try { var parser = RequestParser(); return try parser.next(&buffer) }())
        #expect(Array(request[1].readableBytesView) == [0x00, 0x0D, 0x0A, 0xFF])
    }

    @Test func repliesInRespTwoAndThree() {
        func encode(_ reply: Reply, _ version: Int) -> String {
            var buffer = ByteBuffer()
            reply.write(to: &buffer, protocolVersion: version)
            return String(buffer: buffer)
        }
        #expect(encode(.simple(#"{"a":"x"}"#), 2) == "+{\"a\":\"x\"}\r\n")
        #expect(encode(.simple("two\r\nlines\nthree"), 2) == "+two lines three\r\n", "a simple string never carries CR or LF")
        #expect(encode(.error(code: "NOTFOUND", message: "order 9 not found"), 2) == "-NOTFOUND order 9 not found\r\n")
        #expect(encode(.bulk([0x41, 0x0A]), 2) == "$2\r\nA\n\r\n")
        #expect(encode(.null, 2) == "$-1\r\n" && encode(.null, 3) == "_\r\n")
        #expect(encode(.map([(.bulk("k"), .integer(1))]), 2) == "*2\r\n$1\r\nk\r\n:1\r\n")
        #expect(encode(.map([(.bulk("k"), .integer(1))]), 3) == "%1\r\n$1\r\nk\r\n:1\r\n")
    }
}
