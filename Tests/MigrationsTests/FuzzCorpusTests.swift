import Foundation
@_spi(Fuzzing) import Migrations
import Testing

/// Replays the committed migration-lexer fuzz corpus (Tests/Fuzz/Corpus/MigrationLexer,
/// grown by `make fuzz`) through the invariants its libFuzzer harness checks.
@Suite("Fuzz corpus replay: migration lexer")
struct MigrationFuzzCorpusTests {
    /// The corpus, and the project's own migrations (the fuzzer's seeds too).
    @Test(arguments: ["Tests/Fuzz/Corpus/MigrationLexer", "migrations"])
    func everyCommittedInputKeepsItsInvariants(folder: String) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let folder = root.appendingPathComponent(folder)
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(names.count >= 10, "\(folder.path) is missing")
        for name in names {
            let bytes = Array(try Data(contentsOf: folder.appendingPathComponent(name)))
            if let failure = MigrationFuzzChecks.lexer(bytes) { Issue.record("\(name): \(failure)") }
        }
    }
}
