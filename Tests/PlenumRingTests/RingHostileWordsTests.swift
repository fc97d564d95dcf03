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

    /// Issue 23: a consumer line scribbled over. The producer that re-attached
    /// and reset ignores the absurd request while it awaits the adoption; the
    /// consumer's adoption clears it; posting resumes with no further reset.
    @Test func aDamagedResetRequestIsIgnoredWhileAResetIsAwaitedAndClearedByTheAdoption() throws {
        let f = try RingFixture(slots: 2)
        var c = f.consumer()
        for w in [f.layout.consumedOffset, f.layout.ackEpochOffset, f.layout.resetRequestOffset] {
            f.memory.store64(0xA5A5_A5A5_A5A5_A5A5, at: w, ordering: .relaxed)
        }
        var p = try f.producer()     // ackEpoch ≠ epoch: awaiting
        p.reset()                     // what the daemon does at every attachment
        #expect(try p.post([1], id: 0) == .resetPending, "awaiting: the absurd request is not corruptPeer")
        #expect(try p.post([1], id: 0) == .resetPending)
        #expect(p.epoch == 2, "no reset beyond the one awaited")
        #expect(c.take().isEmpty)   // the consumer's epoch check adopts epoch 2…
        for _ in 0..<70 where c.epoch != 2 { _ = c.take() }
        #expect(c.epoch == 2)
        #expect(f.memory.load64(at: f.layout.resetRequestOffset, ordering: .acquiring) == 0, "…and clears the request")
        for i in 0..<6 {
            #expect(try p.post([UInt8(i)], id: UInt64(i)) == .posted(sequence: UInt64(i + 1)))
            guard case .delivered(let m) = c.take() else { Issue.record("message \(i) not delivered"); return }
            #expect(m.payload == [UInt8(i)])
        }
        #expect(p.epoch == 2, "healed for good")
    }

    /// Issue 24: an acknowledged epoch that goes back (the consumer's
    /// adoption was seen, then lost in its crash) resets, as a consumed
    /// count going back does; one from the future is corruption.
    @Test func anAcknowledgedEpochThatGoesBackResetsOneFromTheFutureThrows() throws {
        let f = try RingFixture(slots: 2)
        var c = f.consumer()
        var p = try f.producer()
        p.reset()
        for _ in 0..<70 where c.epoch != 2 { _ = c.take() }
        for i in 0..<2 { #expect(try p.post([1], id: UInt64(i)) == .posted(sequence: UInt64(i + 1))) }
        // Full: the next post reads the consumer line, whose ackEpoch went back to 1.
        f.memory.store64(1, at: f.layout.ackEpochOffset, ordering: .releasing)
        #expect(try p.post([1], id: 9) == .resetPending)
        #expect(p.epoch == 3)
        // The same with an epoch from the future: corruption, no reset.
        var q = try f.producer()
        f.memory.store64(3, at: f.layout.ackEpochOffset, ordering: .releasing)
        f.memory.store64(0, at: f.layout.consumedOffset, ordering: .releasing)
        for i in 0..<2 { #expect(try q.post([1], id: UInt64(i)) == .posted(sequence: UInt64(i + 1))) }
        f.memory.store64(7, at: f.layout.ackEpochOffset, ordering: .releasing)
        #expect(throws: RingError.self) { _ = try q.post([1], id: 9) }
        #expect(q.epoch == 3)
    }

    /// Issue 24: a slot whose commit word a reset cleared between the
    /// consumer's commit load and its CRC read is discarded by the reset,
    /// not reported as a checksum failure — but a bad CRC with no reset is.
    @Test func aFailedChecksumUnderANewerEpochIsTheResetNotCorruption() throws {
        let f = try RingFixture(slots: 4)
        var p = try f.producer()
        var c = f.consumer()
        #expect(try p.post(bytes(40, seed: 1), id: 1) == .posted(sequence: 1))
        #expect(try p.post(bytes(40, seed: 2), id: 2) == .posted(sequence: 2))
        f.flip(sequence: 1, byte: 40)
        #expect(c.take().corruption == .checksum(sequence: 1), "no reset: corruption")
        f.flip(sequence: 2, byte: 40)
        f.memory.store64(2, at: f.layout.epochOffset, ordering: .releasing)   // the producer reset meanwhile
        #expect(c.take().isEmpty)
        #expect(c.epoch == 2, "the reset was adopted")
        #expect(c.stats.corrupt == 1)
    }

    /// SPEC §5.3 "Idle": a producer with nothing more to post serves a
    /// consumer's reset request; it neither resets for nothing nor for an
    /// absurd request.
    @Test func anIdleProducerServesAResetRequestAndOnlyAValidOne() throws {
        let f = try RingFixture(slots: 4)
        var p = try f.producer()
        var c = f.consumer()
        #expect(try p.post([1], id: 1) == .posted(sequence: 1))
        let none = p.serveResetRequest()
        #expect(!none, "no request: no reset")
        f.memory.store64(0xA5A5_A5A5, at: f.layout.resetRequestOffset, ordering: .releasing)
        let absurd = p.serveResetRequest()
        #expect(!absurd, "an absurd request is not served")
        c.requestReset()
        let served = p.serveResetRequest()
        #expect(served)
        #expect(p.epoch == 2)
        for _ in 0..<70 where c.epoch != 2 { _ = c.take() }
        #expect(c.epoch == 2, "the consumer adopts the reset it asked for")
        let again = p.serveResetRequest()
        #expect(!again, "served once")
        #expect(try p.post([2], id: 2) == .posted(sequence: 1))
    }
}
