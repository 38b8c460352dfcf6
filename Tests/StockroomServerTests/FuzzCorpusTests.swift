import Foundation
import Testing
@_spi(Fuzzing) import StockroomServer

/// Replays the committed fuzz corpus (Tests/Fuzz/Corpus/, grown by `make fuzz`) through
/// the invariant checks the libFuzzer harnesses run, so every input that once crashed or
/// broke an invariant stays a regression test.
@Suite("Fuzz corpus replay: protocol parsers")
struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/Corpus")

    static func inputs(_ target: String) throws -> [(name: String, bytes: [UInt8])] {
        let folder = corpus.appendingPathComponent(target)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        return try names.map { ($0, Array(try Data(contentsOf: folder.appendingPathComponent($0)))) }
    }

    @Test(arguments: ["RequestParser", "InlineArguments", "JSON"])
    func everyCommittedInputKeepsItsInvariants(target: String) throws {
        let check: ([UInt8]) -> String? = switch target {
        case "RequestParser": ServerFuzzChecks.requestParser
        case "InlineArguments": ServerFuzzChecks.inlineArguments
        default: ServerFuzzChecks.json
        }
        let inputs = try Self.inputs(target)
        #expect(inputs.count >= 10, "the \(target) corpus is missing")
        for (name, bytes) in inputs {
            if let failure = check(bytes) { Issue.record("\(target)/\(name): \(failure)") }
        }
    }
}
