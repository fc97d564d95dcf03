import PlenumMemory
import PlenumRing
import Testing

@Suite struct RingLayoutTests {
    @Test func offsetsFollowTheSpecDiagram() throws {
        let l = try RingLayout(base: 4096, lineSize: 128, slotCount: 8, slotSize: 256)
        #expect(l.descriptorOffset == 4096)
        #expect(l.producerLine == 4096 + 128)
        #expect(l.epochOffset == 4096 + 128)
        #expect(l.consumerLine == 4096 + 256)
        #expect(l.consumedOffset == 4096 + 256)
        #expect(l.ackEpochOffset == 4096 + 264)
        #expect(l.slotsOffset == 4096 + 384)
        #expect(l.slotOffset(sequence: 1) == 4096 + 384)
        #expect(l.slotOffset(sequence: 8) == 4096 + 384 + 7 * 256)
        #expect(l.slotOffset(sequence: 9) == 4096 + 384, "sequence 9 wraps to slot 0")
        #expect(l.totalBytes == 384 + 8 * 256)
        #expect(l.maxPayload == 224)
        // Producer, consumer and slot lines are distinct lines: one writer per line.
        let lines = Set([l.producerLine, l.consumerLine, l.slotsOffset].map { $0 / 128 })
        #expect(lines.count == 3)
    }

    @Test(arguments: [(7, 256), (1, 256), (8, 100), (8, 64), (1 << 21, 256), (8, 1 << 17)])
    func rejectsBadGeometry(slots: Int, slotSize: Int) {
        #expect(throws: RingError.self) { try RingLayout(base: 0, lineSize: 128, slotCount: slots, slotSize: slotSize) }
    }

    @Test func rejectsUnalignedBase() {
        #expect(throws: RingError.self) { try RingLayout(base: 64, lineSize: 128, slotCount: 8, slotSize: 128) }
    }

    @Test func describeRoundTripsAndValidates() throws {
        let f = try RingFixture(slots: 16, slotSize: 384)
        let d = try Ring.describe(at: f.layout.base, length: f.layout.totalBytes, in: f.memory)
        #expect(d.layout == f.layout)
        #expect(d.producer == 0 && d.consumer == 1)
        // A segment too short for the declared geometry.
        #expect(throws: RingError.tooSmall(segment: f.layout.totalBytes - 128, needed: f.layout.totalBytes)) {
            try Ring.describe(at: f.layout.base, length: f.layout.totalBytes - 128, in: f.memory)
        }
        // Same bytes seen with another line size.
        let other = f.mapping.memory(lineSize: try LineSize(256))
        #expect(throws: RingError.lineSizeMismatch(ring: 128, memory: 256)) {
            try Ring.describe(at: f.layout.base, length: f.layout.totalBytes, in: other)
        }
        // Damage the descriptor: checksum catches it.
        f.memory.write(at: f.layout.base + RingLayout.dSlots, count: 1) { $0[0] ^= 1 }
        #expect(throws: RingError.notARing(reason: "descriptor checksum mismatch")) {
            try Ring.describe(at: f.layout.base, length: f.layout.totalBytes, in: f.memory)
        }
        // Not a ring at all.
        #expect(throws: RingError.self) { try Ring.describe(at: 0, length: f.layout.totalBytes, in: f.memory) }
    }

    @Test func unformattedRingRefusesProducer() throws {
        let m = try Mapping(anonymous: 65536)
        let layout = try RingLayout(base: 0, lineSize: 128, slotCount: 8, slotSize: 128)
        #expect(throws: RingError.self) { try RingProducer(memory: m.memory(lineSize: .default), layout: layout) }
    }
}
