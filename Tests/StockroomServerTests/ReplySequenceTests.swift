import NIOCore
import Testing
@testable import StockroomServer

@Suite("Reply order (no I/O)")
struct ReplySequenceTests {
    private func texts(_ ready: ArraySlice<ByteBuffer?>) -> [String] {
        ready.map { String(buffer: $0!) }
    }

    @Test func laterRepliesWaitForEarlierOnes() {
        var replies = ReplySequence()
        replies.append(ByteBuffer(string: "a"))
        let second = replies.reserve()
        let third = replies.reserve()
        replies.append(ByteBuffer(string: "d"))
        #expect(texts(replies.takeReady()) == ["a"])
        #expect(replies.waiting == 2)
        replies.fill(third, with: ByteBuffer(string: "c"))
        #expect(texts(replies.takeReady()) == [], "c waits for b")
        replies.fill(second, with: ByteBuffer(string: "b"))
        #expect(texts(replies.takeReady()) == ["b", "c", "d"])
        #expect(replies.isEmpty && replies.waiting == 0)
    }

    @Test func numbersStayValidAcrossCompaction() {
        var replies = ReplySequence()
        var out: [String] = []
        var pending: [(Int, String)] = []
        for n in 0..<1000 {
            if n % 3 == 0 {
                pending.append((replies.reserve(), "\(n)"))
            } else {
                replies.append(ByteBuffer(string: "\(n)"))
            }
            // Fill the oldest reserved place every other step, so some stay open a while.
            if n % 2 == 0, !pending.isEmpty {
                let (number, text) = pending.removeFirst()
                replies.fill(number, with: ByteBuffer(string: text))
            }
            out += texts(replies.takeReady())
        }
        for (number, text) in pending { replies.fill(number, with: ByteBuffer(string: text)) }
        out += texts(replies.takeReady())
        #expect(out == (0..<1000).map(String.init))
        #expect(replies.isEmpty)
    }
}
