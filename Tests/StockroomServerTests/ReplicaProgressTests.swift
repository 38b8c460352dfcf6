@testable import StockroomServer
import Testing

/// Read-your-writes over standbys, without I/O (`ReplicaProgress`).
@Suite struct ReplicaProgressTests {
    let start = ContinuousClock.now
    func at(_ ms: Int) -> ContinuousClock.Instant { start + .milliseconds(ms) }

    @Test func aClientReadsFromStandbysOnceTheyReplayedPastItsWrite() {
        var progress = ReplicaProgress()
        progress.primary(lsn: 100, sentAt: at(0))
        progress.standby("a", replayed: 100, heardAt: at(1))
        #expect(progress.standbysMayServe(lastWrite: nil, now: at(2)), "never wrote: standbys")
        // A write acknowledged at 5 ms: no primary sample sent after it yet.
        #expect(!progress.standbysMayServe(lastWrite: at(5), now: at(6)))
        progress.primary(lsn: 180, sentAt: at(10))
        #expect(!progress.standbysMayServe(lastWrite: at(5), now: at(11)), "replayed 100 < 180")
        progress.standby("a", replayed: 179, heardAt: at(12))
        #expect(!progress.standbysMayServe(lastWrite: at(5), now: at(12)))
        progress.standby("a", replayed: 180, heardAt: at(13))
        #expect(progress.standbysMayServe(lastWrite: at(5), now: at(13)))
        // Later primary samples do not move the fence: the first one after the write does.
        progress.primary(lsn: 900, sentAt: at(20))
        #expect(progress.standbysMayServe(lastWrite: at(5), now: at(21)))
        #expect(!progress.standbysMayServe(lastWrite: at(15), now: at(21)))
        #expect(progress.lagBytes(now: at(21)) == 720)
    }

    @Test func theSlowestStandbyHeardFromLatelyDecides() {
        var progress = ReplicaProgress(window: .seconds(2))
        progress.primary(lsn: 50, sentAt: at(10))
        progress.standby("a", replayed: 60, heardAt: at(11))
        progress.standby("b", replayed: 40, heardAt: at(11))
        #expect(!progress.standbysMayServe(lastWrite: at(5), now: at(12)), "b is behind")
        // b not heard from for longer than the window: only a counts.
        progress.standby("a", replayed: 60, heardAt: at(2500))
        #expect(progress.standbysMayServe(lastWrite: at(5), now: at(2500)))
        // A read pool that fell back to a primary has everything.
        progress.standby("b", replayed: nil, heardAt: at(2600))
        #expect(progress.replayedEverywhere(now: at(2600)) == 60)
    }

    @Test func withNoStandbyHeardFromReadsGoToThePrimary() {
        var progress = ReplicaProgress(window: .seconds(2))
        #expect(!progress.standbysMayServe(lastWrite: nil, now: at(0)))
        progress.standby("a", replayed: 10, heardAt: at(0))
        #expect(progress.standbysMayServe(lastWrite: nil, now: at(100)))
        #expect(!progress.standbysMayServe(lastWrite: nil, now: at(2100)), "silent for longer than the window")
    }

    @Test func samplesAreBoundedAndStayInOrder() {
        var progress = ReplicaProgress()
        for i in 0..<(ReplicaProgress.maxSamples + 100) { progress.primary(lsn: UInt64(i), sentAt: at(i)) }
        #expect(progress.samples.count == ReplicaProgress.maxSamples)
        progress.primary(lsn: 5, sentAt: at(100_000))  // an older answer arriving late
        progress.primary(lsn: 10_000, sentAt: at(1))
        #expect(progress.samples.count == ReplicaProgress.maxSamples && progress.samples.last?.lsn == UInt64(ReplicaProgress.maxSamples + 99))
    }

    @Test func lsnTextParses() {
        #expect(ReplicaProgress.lsn("0/3000000") == 0x3000000)
        #expect(ReplicaProgress.lsn("16/B374D848") == 0x16_B374_D848)
        for bad in ["", "1", "x/1", "1/", "/1", "100000000/0", "1/2/3"] { #expect(ReplicaProgress.lsn(bad) == nil) }
    }
}
