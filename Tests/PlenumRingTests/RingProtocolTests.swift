import PlenumMemory
import PlenumRing
import Testing

@Suite struct RingProtocolTests {
    @Test func postThenPollDeliversEveryField() throws {
        let f = try RingFixture()
        var p = try f.producer(), c = f.consumer()
        #expect(c.take().isEmpty)
        #expect(try p.post(bytes(40, seed: 3), id: 77, kind: 5, flags: 9) == .posted(sequence: 1))
        let got = try #require(c.take().delivered)
        #expect(got == Received(sequence: 1, kind: 5, flags: 9, requestId: 77, payload: bytes(40, seed: 3)))
        #expect(c.take().isEmpty)
        #expect(c.stats.delivered == 1 && c.stats.corrupt == 0)
    }

    @Test func zeroLengthAndMaximumPayloads() throws {
        let f = try RingFixture(slots: 4, slotSize: 512)
        var p = try f.producer(), c = f.consumer()
        #expect(try p.post([], id: 1) == .posted(sequence: 1))
        #expect(try p.post(bytes(f.layout.maxPayload, seed: 1), id: 2) == .posted(sequence: 2))
        #expect(c.take().delivered?.payload == [])
        #expect(c.take().delivered?.payload == bytes(f.layout.maxPayload, seed: 1))
    }

    @Test func oversizedMessageIsRejectedAndNothingIsWritten() throws {
        let f = try RingFixture(slots: 4, slotSize: 256)
        var p = try f.producer(), c = f.consumer()
        #expect(throws: RingError.messageTooLarge(length: 225, maxPayload: 224)) { try p.post(bytes(225, seed: 0), id: 1) }
        #expect(c.take().isEmpty)
        #expect(try p.post(bytes(8, seed: 0), id: 2) == .posted(sequence: 1))
    }

    @Test(arguments: [64, 128, 256])
    func wrapsAroundManyTimesInOrder(line: Int) throws {
        let f = try RingFixture(slots: 8, slotSize: 2 * line, line: line)
        var p = try f.producer(), c = f.consumer(ackBatch: 3)
        var next: UInt64 = 0
        for round in 0..<50 {
            let burst = 1 + round % 8
            for i in 0..<burst {
                let id = UInt64(round * 100 + i)
                #expect(try p.post(bytes(Int(id) % (f.layout.maxPayload + 1), seed: UInt8(truncatingIfNeeded: id)), id: id) != .full)
            }
            for i in 0..<burst {
                next += 1
                let id = UInt64(round * 100 + i)
                let got = try #require(c.take().delivered)
                #expect(got.sequence == next)
                #expect(got.requestId == id)
                #expect(got.payload == bytes(Int(id) % (f.layout.maxPayload + 1), seed: UInt8(truncatingIfNeeded: id)))
            }
            // Idle polls acknowledge the partial batch, so the next burst of
            // up to C messages finds every slot free.
            for _ in 0..<c.ackIdlePolls { #expect(c.take().isEmpty) }
        }
        #expect(c.stats.delivered == next)
    }

    @Test func fullRingSaysFullAndRecoversAfterAcknowledgement() throws {
        let f = try RingFixture(slots: 8)
        var p = try f.producer(), c = f.consumer(ackBatch: 4)
        for i in 0..<8 { #expect(try p.post([UInt8(i)], id: UInt64(i)) == .posted(sequence: UInt64(i + 1))) }
        #expect(try p.post([9], id: 9) == .full)
        // One delivery is not acknowledged yet (batch of 4): still full.
        #expect(c.take().delivered?.requestId == 0)
        #expect(try p.post([9], id: 9) == .full)
        for i in 1..<4 { #expect(c.take().delivered?.requestId == UInt64(i)) }
        // The batch of 4 is acknowledged: exactly 4 slots free.
        for i in 0..<4 { #expect(try p.post([1], id: UInt64(100 + i)) == .posted(sequence: UInt64(9 + i))) }
        #expect(try p.post([1], id: 200) == .full)
        // Drain all 8: acknowledgements at 4 and 8 free the ring.
        for _ in 0..<8 { #expect(c.take().delivered != nil) }
        #expect(c.take().isEmpty)
        for i in 0..<8 { #expect(try p.post([1], id: UInt64(300 + i)) == .posted(sequence: UInt64(13 + i))) }
        #expect(try p.post([1], id: 400) == .full)
    }

    @Test func idlePollsPublishAPartialBatch() throws {
        let f = try RingFixture(slots: 8)
        var p = try f.producer(), c = f.consumer(ackBatch: 4)
        for i in 0..<2 { _ = try p.post([1], id: UInt64(i)) }
        for _ in 0..<2 { #expect(c.take().delivered != nil) }
        func shared() -> UInt64 { f.memory.load64(at: f.layout.consumedOffset, ordering: .acquiring) }
        for _ in 0..<(c.ackIdlePolls - 1) { #expect(c.take().isEmpty) }
        #expect(shared() == 0, "below the batch and not idle long enough: no acknowledgement flush")
        #expect(c.take().isEmpty)
        #expect(shared() == 2, "idle long enough: the partial batch is acknowledged")
    }

    @Test func corruptPayloadIsReportedCountedAndNotDelivered() throws {
        let f = try RingFixture()
        var p = try f.producer(), c = f.consumer()
        for i in 0..<3 { _ = try p.post(bytes(100, seed: UInt8(i)), id: UInt64(i)) }
        f.flip(sequence: 2, byte: RingLayout.slotHeaderBytes + 50)
        #expect(c.take().delivered?.requestId == 0)
        #expect(c.take().corruption == .checksum(sequence: 2))
        #expect(c.take().delivered?.requestId == 2)
        #expect(c.stats.corrupt == 1 && c.stats.delivered == 2 && c.stats.skipped == 1)
    }

    @Test func corruptHeaderFieldsAreCaught() throws {
        let f = try RingFixture()
        var p = try f.producer(), c = f.consumer()
        for i in 0..<4 { _ = try p.post(bytes(10, seed: UInt8(i)), id: UInt64(i)) }
        // An impossible length is refused before any payload byte is read.
        f.memory.write(at: f.layout.slotOffset(sequence: 1) + RingLayout.sLength, count: 4) {
            $0.storeBytes(of: UInt32(1 << 30), as: UInt32.self)
        }
        #expect(c.take().corruption == .badLength(sequence: 1, length: 1 << 30))
        // Another epoch.
        f.memory.write(at: f.layout.slotOffset(sequence: 2) + RingLayout.sEpoch, count: 4) { $0.storeBytes(of: UInt32(7), as: UInt32.self) }
        #expect(c.take().corruption == .staleEpoch(sequence: 2, found: 7))
        // The request id is covered by the checksum.
        f.flip(sequence: 3, byte: RingLayout.sRequest)
        #expect(c.take().corruption == .checksum(sequence: 3))
        #expect(c.take().delivered?.requestId == 3)
    }

    @Test func sequenceFromTheFutureStallsUntilReset() throws {
        let f = try RingFixture()
        var p = try f.producer(), c = f.consumer()
        _ = try p.post([1], id: 1)
        #expect(c.take().delivered?.requestId == 1)
        f.store(1000, sequenceSlot: 2, byte: 0)
        #expect(c.take().corruption == .badSequence(found: 1000, expected: 2))
        // Reported once, counted once, never delivered.
        for _ in 0..<5 { #expect(c.take().isEmpty) }
        #expect(c.stats.corrupt == 1)
        // The producer resets the ring; the consumer adopts the new epoch.
        p.reset()
        #expect(try p.post([2], id: 2) == .resetPending)
        for _ in 0..<RingConsumer<MappedMemory>.epochCheckInterval { _ = c.take() }
        #expect(c.epoch == 2 && c.consumed == 0)
        #expect(try p.post([3], id: 3) == .posted(sequence: 1))
        let got = try #require(c.take().delivered)
        #expect(got.requestId == 3 && got.sequence == 1)
    }

    @Test func resetDiscardsTheOldEpoch() throws {
        let f = try RingFixture()
        var p = try f.producer(), c = f.consumer()
        for i in 0..<5 { _ = try p.post([UInt8(i)], id: UInt64(i)) }
        #expect(c.take().delivered?.requestId == 0)
        p.reset()
        #expect(p.epoch == 2)
        var delivered: [UInt64] = []
        for _ in 0..<(2 * RingConsumer<MappedMemory>.epochCheckInterval) {
            if let r = c.take().delivered { delivered.append(r.requestId) }
        }
        #expect(delivered.isEmpty, "slots of the old epoch are cleared by the reset")
        #expect(c.stats.resets == 1)
        #expect(try p.post([9], id: 9) == .posted(sequence: 1))
        #expect(c.take().delivered?.requestId == 9)
    }

    @Test func consumerCanRequestAReset() throws {
        let f = try RingFixture(slots: 4)
        var p = try f.producer(), c = f.consumer()
        for i in 0..<4 { _ = try p.post([1], id: UInt64(i)) }
        c.requestReset()
        // The producer reads the consumer line when the ring looks full.
        #expect(try p.post([1], id: 5) == .resetPending)
        #expect(p.epoch == 2)
        for _ in 0..<RingConsumer<MappedMemory>.epochCheckInterval { _ = c.take() }
        #expect(try p.post([7], id: 7) == .posted(sequence: 1))
        #expect(c.take().delivered?.requestId == 7)
    }

    @Test func producerEpochGoingBackwardsIsReported() throws {
        let f = try RingFixture()
        var p = try f.producer(), c = f.consumer()
        p.reset()
        for _ in 0..<RingConsumer<MappedMemory>.epochCheckInterval { _ = c.take() }
        #expect(c.epoch == 2)
        // A corrupt peer rewinds the producer line.
        f.memory.store64(1, at: f.layout.epochOffset, ordering: .relaxed)
        var reports: [RingCorruption] = []
        for _ in 0..<RingConsumer<MappedMemory>.epochCheckInterval { if let r = c.take().corruption { reports.append(r) } }
        #expect(reports == [.badEpoch(found: 1, current: 2)])
        #expect(c.epoch == 2, "the consumer keeps its epoch")
    }

    @Test func producerResumesAfterRestart() throws {
        let f = try RingFixture()
        var p = try f.producer(), c = f.consumer()
        for i in 0..<3 { _ = try p.post([UInt8(i)], id: UInt64(i)) }
        #expect(c.take().delivered?.requestId == 0)
        var restarted = try f.producer()
        #expect(restarted.posted == 3)
        #expect(try restarted.post([3], id: 3) == .posted(sequence: 4))
        #expect((1...3).map { _ in c.take().delivered?.requestId } == [1, 2, 3])
    }

    @Test func consumerResumesFromItsPublishedAcknowledgement() throws {
        let f = try RingFixture()
        var p = try f.producer(), c = f.consumer(ackBatch: 1)
        for i in 0..<4 { _ = try p.post([UInt8(i)], id: UInt64(i)) }
        _ = c.take(); _ = c.take()
        var restarted = f.consumer()
        #expect(restarted.consumed == 2)
        #expect(restarted.take().delivered?.requestId == 2)
    }

    @Test func impossibleAcknowledgementIsACorruptPeer() throws {
        let f = try RingFixture(slots: 4)
        var p = try f.producer()
        for i in 0..<4 { _ = try p.post([1], id: UInt64(i)) }
        f.memory.store64(99, at: f.layout.consumedOffset, ordering: .relaxed)
        #expect(throws: RingError.self) { try p.post([1], id: 9) }
    }

    @Test func zeroCopyFillWritesInPlace() throws {
        let f = try RingFixture()
        var p = try f.producer(), c = f.consumer()
        var filled = 0
        let result = try p.post(kind: 1, requestId: 5, length: 16, fill: { b in
            filled = b.count
            for i in 0..<16 { b[i] = UInt8(i) }
        })
        #expect(result == .posted(sequence: 1))
        #expect(filled == 16)
        #expect(c.take().delivered?.payload == Array(0..<16))
    }
}
