import PlenumMemory
import PlenumRing
import Testing

/// Control words a hostile or corrupt peer writes (found by `plenum fuzz`):
/// each is corruption, reported or thrown — never a trap, never a loop.
@Suite struct RingHostileWordsTests {
    @Test func aProducerEpochOfTwoToTheSixtyFourMinusOneIsBadNotAdoptedAndResetDoesNotTrap() throws {
        let f = try RingFixture()
        var c = f.consumer()
        f.memory.store64(.max, at: f.layout.epochOffset, ordering: .releasing)
        // A committed slot carrying the low bits of that epoch lures the consumer to adopt it.
        f.store(1, sequenceSlot: 1, byte: 0)
        f.memory.store64(UInt64(UInt32.max), at: f.layout.slotOffset(sequence: 1) + RingLayout.sEpoch, ordering: .relaxed)
        var reports: [RingCorruption] = []
        for _ in 0..<200 {
            switch c.poll({ _ in }) {
            case .corrupt(let why): reports.append(why)
            case .delivered: Issue.record("nothing valid was posted")
            case .empty: break
            }
        }
        #expect(c.epoch == 1, "the absurd epoch was not adopted")
        c.requestReset()   // must not overflow whatever the epoch
        #expect(f.memory.load64(at: f.layout.resetRequestOffset, ordering: .acquiring) == 2)
    }

    @Test func aResetRequestBeyondEpochPlusOneIsCorruptionNotAnEndlessReset() throws {
        let f = try RingFixture(slots: 2)
        var p = try f.producer()
        for _ in 0..<2 { _ = try [1, 2, 3].withUnsafeBytes { try p.post(kind: 1, requestId: 0, payload: $0) } }
        f.memory.store64(.max, at: f.layout.resetRequestOffset, ordering: .releasing)
        #expect(throws: RingError.self) { _ = try [1].withUnsafeBytes { try p.post(kind: 1, requestId: 0, payload: $0) } }
        #expect(p.epoch == 1, "no reset was started")
        // A real request (epoch + 1) is served.
        f.memory.store64(2, at: f.layout.resetRequestOffset, ordering: .releasing)
        #expect(try [1].withUnsafeBytes { try p.post(kind: 1, requestId: 0, payload: $0) } == .resetPending)
        #expect(p.epoch == 2)
    }
}
