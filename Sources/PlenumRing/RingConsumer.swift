import PlenumMemory

/// The consuming end of a ring (SPEC.md §5.4). One per ring, in one thread.
///
/// Private state: `consumed` (messages taken in this epoch; the next
/// expected sequence is consumed + 1) and `published` (the acknowledgement
/// last written to the consumer line). Acknowledgements are batched: the
/// consumer line is written when `ackBatch` messages are pending, or when
/// `ackIdlePolls` polls in a row found the ring empty, so a producer waiting
/// on `.full` is never left behind while the hot request/reply path carries
/// no acknowledgement flush.
///
/// ```
///   published ≤ consumed;  slot of seq n = (n - 1) mod C
///   commit word of the expected slot:  consumed+1        → ready
///                                      consumed+1-C, 0   → empty (older lap)
///                                      anything else     → corrupt
/// ```
public struct RingConsumer<Memory: SharedMemory> {
    public let memory: Memory
    public let layout: RingLayout
    public private(set) var epoch: UInt64
    /// Messages taken in this epoch; the next expected sequence is this + 1.
    public var consumed: UInt64 { _consumed }
    @usableFromInline var _consumed: UInt64
    @usableFromInline var published: UInt64
    /// Acknowledge after this many deliveries (1 = every message).
    public var ackBatch: UInt64
    /// Acknowledge pending deliveries after this many empty polls in a row.
    public var ackIdlePolls: Int = 32
    @usableFromInline var idleStreak = 0
    public var stats: RingStats { _stats }
    @usableFromInline var _stats = RingStats()
    @usableFromInline var idleSinceEpochCheck = 0
    @usableFromInline var reportedStall: UInt64 = 0
    /// Empty polls between two reads of the producer's epoch (SPEC §5.6).
    public static var epochCheckInterval: Int { 64 }

    /// Attaches and resumes from the consumer line: the last published
    /// acknowledgement. Messages delivered but not yet acknowledged before a
    /// crash are delivered again (at-least-once across consumer restarts).
    public init(memory: Memory, layout: RingLayout, ackBatch: Int = 16) {
        self.memory = memory
        self.layout = layout
        self.ackBatch = UInt64(max(1, min(ackBatch, layout.slotCount / 2)))
        memory.invalidate(at: layout.consumedOffset, count: 24)
        memory.fence(.full)
        epoch = memory.load64(at: layout.ackEpochOffset, ordering: .acquiring)
        _consumed = memory.load64(at: layout.consumedOffset, ordering: .acquiring)
        published = _consumed
        checkProducerEpoch()
    }

    /// Takes the next message if one is committed, passing it to `body`.
    ///
    /// Observe sequence (SPEC §5.4):
    /// ```
    ///  1 invalidate the slot's first granule G; fence(.full)
    ///  2 load sequence (acquiring)           ready? else empty / corrupt
    ///  3 validate length and epoch from the first granule
    ///  4 invalidate [slot+G, slot+end); fence(.full)   (only if end > G)
    ///  5 verify CRC32C over header + payload, deliver, advance
    ///  6 every ackBatch messages, or after ackIdlePolls empty polls:
    ///    store consumed (releasing); flush; fence(.store)
    /// ```
    @inlinable
    public mutating func poll<R, E: Error>(_ body: (RingMessage) throws(E) -> R) throws(E) -> PollResult<R> {
        let expected = consumed &+ 1
        let slot = layout.slotOffset(sequence: expected)
        let mutants = memory.mutants
        if !mutants.contains(.noInvalidateBeforePoll) {
            memory.invalidate(at: slot, count: 8)
            memory.fence(.full)
        }
        let seq = memory.load64(at: slot, ordering: .acquiring)
        guard seq == expected else { return idle(found: seq, expected: expected) }
        idleSinceEpochCheck = 0
        idleStreak = 0
        // Granule 0 was fetched after the commit was observed: header is current.
        let (length, slotEpoch) = memory.read(at: slot &+ RingLayout.sEpoch, count: 12) { b in
            (UInt32(littleEndian: b.loadUnaligned(fromByteOffset: RingLayout.sLength - 8, as: UInt32.self)),
             UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 0, as: UInt32.self)))
        }
        guard Int(length) <= layout.maxPayload else { return skip(.badLength(sequence: seq, length: length)) }
        guard slotEpoch == UInt32(truncatingIfNeeded: epoch) else {
            // A leftover of an earlier epoch (a reset need not clear it) is
            // empty. A slot of a newer epoch: the producer reset the ring and
            // posted again before we read its epoch; adopt it.
            if isOlderEpoch(slotEpoch) { return idleEmpty() }
            let before = epoch
            if let bad = checkProducerEpoch() { return .corrupt(bad) }
            if epoch != before { return .empty }
            return skip(.staleEpoch(sequence: seq, found: slotEpoch))
        }
        let end = RingLayout.slotHeaderBytes &+ Int(length)
        let granule = memory.flushGranule
        if mutants.contains(.ackBeforeRead) { publishAck(upTo: seq) }
        if end > granule, !mutants.contains(.noInvalidateBeforePoll) {
            memory.invalidate(at: slot &+ granule, count: end &- granule)
            memory.fence(.full)
        }
        let outcome: R? = try memory.read(at: slot, count: end) { (b) throws(E) -> R? in
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(b), skipping: RingLayout.sCRC..<RingLayout.sRequest)
            guard crc == UInt32(littleEndian: b.loadUnaligned(fromByteOffset: RingLayout.sCRC, as: UInt32.self)) else { return nil }
            let message = RingMessage(
                sequence: seq,
                kind: UInt16(littleEndian: b.loadUnaligned(fromByteOffset: RingLayout.sKind, as: UInt16.self)),
                flags: UInt16(littleEndian: b.loadUnaligned(fromByteOffset: RingLayout.sFlags, as: UInt16.self)),
                requestId: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: RingLayout.sRequest, as: UInt64.self)),
                payload: UnsafeRawBufferPointer(rebasing: b[RingLayout.slotHeaderBytes...]))
            return try body(message)
        }
        guard let outcome else {
            // A reset may have cleared the slot between the commit load and
            // this read (the producer publishes its new epoch before it
            // clears any commit word, SPEC §5.6 steps 1–2): then the slot is
            // discarded by the reset, not corrupt (§5.4 step 5).
            let before = epoch
            if checkProducerEpoch() == nil, epoch != before { return .empty }
            return skip(.checksum(sequence: seq))
        }
        advance()
        _stats.delivered &+= 1
        return .delivered(outcome)
    }

    /// Skips a committed but corrupt slot: counted, never delivered.
    @usableFromInline
    mutating func skip<R>(_ why: RingCorruption) -> PollResult<R> {
        _stats.corrupt &+= 1
        _stats.skipped &+= 1
        advance()
        return .corrupt(why)
    }

    @inlinable
    mutating func advance() {
        _consumed &+= 1
        if consumed &- published >= ackBatch { publishAck() }
    }

    /// Nothing ready at `expected`. Empty, or a commit word that cannot be
    /// (reported once; the ring stalls at it until the producer resets).
    @usableFromInline
    mutating func idle<R>(found: UInt64, expected: UInt64) -> PollResult<R> {
        let lap = UInt64(layout.slotCount)
        idleStreak += 1
        if published != consumed, idleStreak >= ackIdlePolls { publishAck() }
        idleSinceEpochCheck += 1
        // An older lap of this slot, of any age: its newest write has not
        // reached memory yet (after a producer's crash lost a line a snoop
        // had already shown us, it can be two laps old; issue 24, seed
        // 118267). Never wrapped: found < expected.
        if found == 0 || (found < expected && (expected &- found) % lap == 0) {
            _stats.emptyPolls &+= 1
            if idleSinceEpochCheck >= Self.epochCheckInterval {
                idleSinceEpochCheck = 0
                if let bad = checkProducerEpoch() { return .corrupt(bad) }
            }
            return .empty
        }
        // A reset clears commit words, and may leave slots of the older
        // epoch behind; look at the slot's and the producer's epoch before
        // crying wolf.
        let slot = layout.slotOffset(sequence: expected)
        let slotEpoch = memory.read(at: slot &+ RingLayout.sEpoch, count: 4) { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
        if isOlderEpoch(slotEpoch) { _stats.emptyPolls &+= 1; return .empty }
        let before = epoch
        if let bad = checkProducerEpoch() { return .corrupt(bad) }
        if epoch != before { return .empty }
        if reportedStall == expected { return .empty }
        if found > expected, (found &- expected) % lap == 0 {
            // A later lap of this slot: we resumed behind an acknowledgement
            // the producer had already seen (SPEC §5.6). We lost our place:
            // ask for a reset and wait for it, nothing is corrupt.
            reportedStall = expected
            requestReset()
            return .empty
        }
        reportedStall = expected
        _stats.corrupt &+= 1
        return .corrupt(.badSequence(found: found, expected: expected))
    }

    /// Whether a slot's 32-bit epoch field names an epoch before ours (the
    /// field holds the low 32 bits; epochs only grow).
    @usableFromInline
    func isOlderEpoch(_ slotEpoch: UInt32) -> Bool {
        let current = UInt32(truncatingIfNeeded: epoch)
        // Epochs start at 1: a zero field was never written by a producer.
        return slotEpoch != 0 && slotEpoch != current && current &- slotEpoch < 1 << 31
    }

    /// An empty poll that found a leftover slot of an earlier epoch.
    @usableFromInline
    mutating func idleEmpty<R>() -> PollResult<R> {
        idleStreak += 1
        if published != consumed, idleStreak >= ackIdlePolls { publishAck() }
        _stats.emptyPolls &+= 1
        return .empty
    }

    /// Publishes the acknowledgement (SPEC §5.4 step 6): the consumer line is
    /// written only here and in the reset acknowledgement.
    @usableFromInline
    mutating func publishAck() { publishAck(upTo: _consumed) }

    @usableFromInline
    mutating func publishAck(upTo sequence: UInt64) {
        memory.store64(sequence, at: layout.consumedOffset, ordering: .releasing)
        memory.flush(at: layout.consumedOffset, count: 8)
        memory.fence(.store)
        published = sequence
        _stats.acksPublished &+= 1
    }

    /// The acknowledgement last published (a restarted consumer resumes
    /// after it, SPEC §5.6).
    public var acknowledged: UInt64 { published }

    /// Every word of private state, for the simulator's state hashing.
    public var privateState: [UInt64] {
        [epoch, _consumed, published, UInt64(idleStreak), UInt64(idleSinceEpochCheck), reportedStall]
    }

    /// Reads the producer line; adopts a newer epoch (SPEC §5.6): position 0,
    /// then acknowledge the epoch. Returns a corruption if the epoch went back.
    @discardableResult @usableFromInline
    mutating func checkProducerEpoch() -> RingCorruption? {
        memory.invalidate(at: layout.epochOffset, count: 8)
        memory.fence(.full)
        let current = memory.load64(at: layout.epochOffset, ordering: .acquiring)
        if current == epoch { return nil }
        // Epochs only grow, and 2^64 − 1 has no successor: a peer that wrote
        // it is corrupt, not a ring in its last epoch (SPEC §5.6).
        guard current > epoch, current < .max else { return .badEpoch(found: current, current: epoch) }
        epoch = current
        _consumed = 0
        published = 0
        reportedStall = 0
        // consumed and resetRequest first, ackEpoch last: an eviction
        // between them shows the producer the old epoch, which it ignores.
        // Clearing resetRequest also erases a damaged one, which the
        // producer ignores only while this adoption is awaited (§5.6 step 4).
        memory.store64(0, at: layout.consumedOffset, ordering: .relaxed)
        memory.store64(0, at: layout.resetRequestOffset, ordering: .relaxed)
        memory.store64(current, at: layout.ackEpochOffset, ordering: .releasing)
        // A flush names one address; it may pass the store to the other word
        // of the line (thesis §3.5.3) unless fenced.
        memory.fence(.store)
        memory.flush(at: layout.consumedOffset, count: 24)
        memory.fence(.store)
        _stats.resets &+= 1
        return nil
    }

    /// Asks the producer for a reset (for a consumer that lost its place).
    /// The producer serves it the next time it reads the consumer line.
    public mutating func requestReset() {
        // Wrapping: an epoch read from shared memory may be anything (§5.6).
        memory.store64(epoch &+ 1, at: layout.resetRequestOffset, ordering: .releasing)
        memory.fence(.store)
        memory.flush(at: layout.resetRequestOffset, count: 8)
        memory.fence(.store)
    }

    /// Publishes any pending acknowledgement now.
    public mutating func flushAcknowledgements() {
        if published != consumed { publishAck() }
    }
}
