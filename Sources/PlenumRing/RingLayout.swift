import PlenumMemory

/// Byte layout of one single-producer single-consumer ring (SPEC.md §5.1).
///
/// Layout constants and offset functions only; it holds no state of the
/// ring. `base` is the ring's offset in its region (line aligned).
///
/// ```
///  base        +L              +2L             +3L
///  ┌───────────┬───────────────┬───────────────┬────────┬────────┬─ ─ ─┬────────┐
///  │descriptor │producer line  │consumer line  │ slot 0 │ slot 1 │     │slot C-1│
///  │(creator,  │(producer      │(consumer      │        │        │     │        │
///  │ immutable)│ writes)       │ writes)       │        │        │     │        │
///  └───────────┴───────────────┴───────────────┴────────┴────────┴─ ─ ─┴────────┘
///   each slot is S bytes, S a multiple of L; slot i holds sequence n when
///   (n - 1) mod C == i.  Every line has exactly one writer.
///
///  descriptor line              producer line        consumer line
///   0 magic u64 "PLNMRING"       0 epoch u64          0 consumed u64  (ack)
///   8 version u32 | line u32                          8 ackEpoch u64
///  16 slots u32   | slotSize u32                     16 resetRequest u64
///  24 producer u32| consumer u32
///  32 crc u32 (over 0..<32)
///
///  slot (first line holds header + commit word; payload continues)
///   0 ┌──────────── sequence u64 (commit word, written last) ──────────┐
///   8 │ epoch u32 (low 32 bits)        │ kind u16      │ flags u16     │
///  16 │ length u32                     │ crc u32                       │
///  24 │──────────── requestId u64 ─────────────────────────────────────│
///  32 │ payload [length] ...                                           │
///     └─────────────────────────────────────────────────────────────────┘
///  crc = CRC32C(bytes [0,20) ++ bytes [24, 32+length))
/// ```
public struct RingLayout: Equatable, Sendable {
    public static let magic: UInt64 = 0x474E_4952_4D4E_4C50 // "PLNMRING"
    public static let version: UInt32 = 1
    public static let slotHeaderBytes = 32
    public static let maxSlotCount = 1 << 20
    public static let maxSlotSize = 1 << 16

    public let base: Int
    public let lineSize: Int
    public let slotCount: Int
    public let slotSize: Int
    /// Mutant `sharedControlLine` (simulator only) folds the consumer line
    /// into the producer line, breaking invariant 1 on purpose.
    public let sharedControlLine: Bool

    /// - Throws: ``RingError/badGeometry(_:)`` unless slotCount is a power of
    ///   two in 2...2^20 and slotSize a multiple of the line size in L...64 KiB.
    public init(base: Int, lineSize: Int, slotCount: Int, slotSize: Int, sharedControlLine: Bool = false) throws(RingError) {
        guard base >= 0, base % lineSize == 0 else { throw .badGeometry("ring base \(base) is not line aligned") }
        guard slotCount >= 2, slotCount <= RingLayout.maxSlotCount, slotCount & (slotCount - 1) == 0 else {
            throw .badGeometry("slot count \(slotCount) must be a power of two in 2...\(RingLayout.maxSlotCount)")
        }
        guard slotSize >= lineSize, slotSize <= RingLayout.maxSlotSize, slotSize % lineSize == 0 else {
            throw .badGeometry("slot size \(slotSize) must be a multiple of the line size \(lineSize), at most \(RingLayout.maxSlotSize)")
        }
        self.base = base
        self.lineSize = lineSize
        self.slotCount = slotCount
        self.slotSize = slotSize
        self.sharedControlLine = sharedControlLine
    }

    /// Bytes a ring of this geometry occupies.
    public var totalBytes: Int { 3 * lineSize + slotCount * slotSize }
    /// Largest payload one message may carry.
    public var maxPayload: Int { slotSize - RingLayout.slotHeaderBytes }

    // descriptor line
    public var descriptorOffset: Int { base }
    public static let dMagic = 0, dVersion = 8, dLine = 12, dSlots = 16, dSlotSize = 20
    public static let dProducer = 24, dConsumer = 28, dCRC = 32

    // producer line
    public var producerLine: Int { base + lineSize }
    public var epochOffset: Int { producerLine }

    // consumer line
    public var consumerLine: Int { sharedControlLine ? producerLine : base + 2 * lineSize }
    public var consumedOffset: Int { sharedControlLine ? producerLine + 8 : consumerLine }
    public var ackEpochOffset: Int { consumedOffset + 8 }
    public var resetRequestOffset: Int { consumedOffset + 16 }

    // slots
    public var slotsOffset: Int { base + 3 * lineSize }
    /// Offset of the slot that carries sequence `seq` (1-based).
    @inlinable public func slotOffset(sequence seq: UInt64) -> Int {
        slotsOffset &+ Int(truncatingIfNeeded: (seq &- 1) & UInt64(slotCount &- 1)) &* slotSize
    }
    public static let sEpoch = 8, sKind = 12, sFlags = 14, sLength = 16, sCRC = 20, sRequest = 24
}
