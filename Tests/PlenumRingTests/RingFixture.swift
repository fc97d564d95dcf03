import PlenumMemory
import PlenumRing

/// A formatted ring in an anonymous shared mapping, for in-process tests.
struct RingFixture {
    let mapping: Mapping
    let memory: MappedMemory
    let layout: RingLayout

    init(slots: Int = 8, slotSize: Int = 256, line: Int = 128) throws {
        let lineSize = try LineSize(line)
        let layout = try RingLayout(base: lineSize.bytes, lineSize: line, slotCount: slots, slotSize: slotSize)
        mapping = try Mapping(anonymous: (layout.totalBytes + 2 * line + 4095) / 4096 * 4096)
        memory = mapping.memory(lineSize: lineSize)
        self.layout = layout
        Ring.format(layout, producer: 0, consumer: 1, in: memory)
    }

    func producer() throws -> RingProducer<MappedMemory> { try RingProducer(memory: memory, layout: layout) }
    func consumer(ackBatch: Int = 1) -> RingConsumer<MappedMemory> { RingConsumer(memory: memory, layout: layout, ackBatch: ackBatch) }

    /// Flips the byte at `offset` within the slot holding `sequence`.
    func flip(sequence: UInt64, byte: Int) {
        let at = layout.slotOffset(sequence: sequence) + byte
        memory.write(at: at, count: 1) { $0[0] ^= 0xFF }
    }

    func store(_ value: UInt64, sequenceSlot: UInt64, byte: Int) {
        memory.store64(value, at: layout.slotOffset(sequence: sequenceSlot) + byte, ordering: .relaxed)
    }
}

struct Received: Equatable {
    var sequence: UInt64
    var kind: UInt16
    var flags: UInt16
    var requestId: UInt64
    var payload: [UInt8]
}

extension RingProducer {
    mutating func post(_ bytes: [UInt8], id: UInt64, kind: UInt16 = 1, flags: UInt16 = 0) throws -> PostResult {
        try bytes.withUnsafeBytes { try post(kind: kind, flags: flags, requestId: id, payload: $0) }
    }
}

extension RingConsumer {
    mutating func take() -> PollResult<Received> {
        poll { m in Received(sequence: m.sequence, kind: m.kind, flags: m.flags, requestId: m.requestId, payload: Array(m.payload)) }
    }
}

func bytes(_ n: Int, seed: UInt8) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) } }

extension PollResult {
    var delivered: R? { if case .delivered(let r) = self { return r } else { return nil } }
    var isEmpty: Bool { if case .empty = self { return true } else { return false } }
    var corruption: RingCorruption? { if case .corrupt(let c) = self { return c } else { return nil } }
}
