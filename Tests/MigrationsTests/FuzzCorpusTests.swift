import Foundation
@_spi(Fuzzing) import Migrations
import Testing

/// Replays the committed migration-lexer fuzz corpus (Tests/Fuzz/Corpus/MigrationLexer,
/// grown by `make fuzz`) through the invariants its libFuzzer harness checks.
@Suite("Fuzz corpus replay: migration lexer")
struct MigrationFuzzCorpusTests {
    @Test func everyCommittedInputKeepsItsInvariants() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/Corpus/MigrationLexer")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(names.count >= 10, "the corpus is missing")
        for name in names {
            let bytes = Array(try Data(contentsOf: folder.appendingPathComponent(name)))
            if let failure = MigrationFuzzChecks.lexer(bytes) { Issue.record("\(name): \(failure)") }
        }
    }
}
