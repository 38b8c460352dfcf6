import Foundation
@testable import StockroomServer
import Testing

/// The feed numbers events at most every `EventFeed.runInterval`, however often commands
/// poke it: a run per commit cost a third more CPU per order under load.
@Suite("Event numbering is paced")
struct EventFeedPacingTests {
    @Test func pokesInQuickSuccessionShareRuns() async throws {
        try await TestServer.with { server in
            let feed = server.server.dispatcher.feed
            try await Task.sleep(for: .milliseconds(100))  // past the start-up run
            let clock = ContinuousClock()
            let before = feed.runs
            let start = clock.now
            while clock.now - start < .milliseconds(300) {
                feed.poke()
                try await Task.sleep(for: .milliseconds(1))
            }
            let runs = feed.runs - before
            let elapsed = clock.now - start
            // Once per interval at most, plus the run going at the start and the
            // once-a-second tick. (A loaded machine makes fewer, never more.)
            #expect(runs <= Int(elapsed / EventFeed.runInterval) + 2, "\(runs) runs in \(elapsed)")
            // And pokes still lead to runs: a run that starts after this call ends.
            let asked = clock.now
            await feed.numbered(within: .seconds(60))
            #expect(feed.runs > before + runs, "a run after the last poke")
            #expect(clock.now - asked < .seconds(60))
        }
    }
}
