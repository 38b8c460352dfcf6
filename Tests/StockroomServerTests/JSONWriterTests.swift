import Foundation
import NIOCore
import Testing
@testable import StockroomServer

/// The bounds the hand-written replies reserve by: a write past them traps, so they must
/// hold for every value.
@Suite("JSON writer")
struct JSONWriterTests {
    func written(maxLength: Int = 4096, _ body: (inout JSONWriter) -> Void) -> String {
        var buffer = ByteBuffer()
        buffer.writeJSON(maxLength: maxLength, body)
        return String(buffer: buffer)
    }

    @Test func stringLengthIsExactlyWhatIsWritten() throws {
        let pieces = ["a", "\"", "\\", "/", "\n", "\r", "\t", "\u{8}", "\u{C}", "\u{0}", "\u{1}", "\u{1F}", "\u{7F}", "é", "😀", " "]
        var random = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let text = (0..<Int.random(in: 0...12, using: &random)).map { _ in pieces.randomElement(using: &random)! }.joined()
            let length = JSONWriter.length(of: text)
            let json = written(maxLength: length) { $0.string(text) }
            #expect(json.utf8.count == length, "\(text.debugDescription)")
            #expect(try JSONSerialization.jsonObject(with: Data(json.utf8), options: .fragmentsAllowed) as? String == text)
        }
    }

    @Test func integersFitTheirBound() {
        #expect(written(maxLength: JSONWriter.maxIntegerLength) { $0.integer(Int64.min) } == "-9223372036854775808")
        #expect(written(maxLength: JSONWriter.maxIntegerLength) { $0.integer(UInt64.max) } == "18446744073709551615")
        #expect(written { $0.integer(0) } == "0")
        #expect(written { $0.integer(Int32(-7)) } == "-7")
    }

    /// PostgreSQL's timestamptz runs from 4713 BC to 294276 AD, and `infinity` comes back
    /// as Int64.max microseconds.
    @Test(arguments: [-210_866_803_200.0, -62_167_219_200.0, 0, 253_402_300_799, 253_402_300_800, 9_224_318_015_999, 9_223_372_036_854.775])
    func timestampsFitTheirBound(seconds: Double) {
        let json = written(maxLength: JSONWriter.maxTimestampLength) { $0.timestamp(Date(timeIntervalSince1970: seconds)) }
        #expect(json.hasPrefix("\"") && json.hasSuffix("Z\""), "\(json)")
        #expect(json.utf8.count <= JSONWriter.maxTimestampLength)
    }

    /// From the Gregorian calendar's first day on: before it, Foundation switches to the
    /// Julian calendar, while ISO 8601 and PostgreSQL stay Gregorian, as this writer does.
    @Test func timestampsMatchISO8601DateFormatterWithinFourDigitYears() {
        let formatter = ISO8601DateFormatter()
        for seconds in [0.0, 951_782_400, 1_709_164_800.9, -1, -12_219_292_800, 253_402_300_799] {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(written { $0.timestamp(date) } == "\"\(formatter.string(from: date))\"", "\(seconds)")
        }
    }
}
