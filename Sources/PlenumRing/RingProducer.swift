import PlenumMemory

/// The producing end of a ring (SPEC.md §5.3). One per ring, in one thread.
///
/// Private state: `posted` (last sequence published in this epoch) and
/// `cachedConsumed` (the consumer's acknowledgement as last read). The
/// consumer line is re-read — after an invalidate — only when the ring looks
/// full, so a post that has room touches no line the consumer writes.
///
/// ```
///   cachedConsumed ≤ consumed (shared) ≤ posted,  posted - cachedConsumed ≤ C
///   slots (consumed, posted] are in flight; a post needs posted - consumed < C
/// ```
public struct RingProducer<Memory: SharedMemory> {
    public let memory: Memory
    public let layout: RingLayout
    public private(set) var epoch: UInt64
    /// Last sequence published in this epoch.
    public var posted: UInt64 { _posted }
    @usableFromInline var _posted: UInt64 = 0
    @usableFromInline var cachedConsumed: UInt64 = 0
    @usableFromInline var awaitingAck = false
    /// A reset was started and the consumer has not acknowledged it yet.
    public var awaitingAcknowledgement: Bool { awaitingAck }
    /// Every word of private state, for the simulator's state hashing.
    public var privateState: [UInt64] { [epoch, _posted, cachedConsumed, awaitingAck ? 1 : 0] }
    /// Private staging area of one slot (never shared memory).
    @usableFromInline let scratch: Scratch

    /// Attaches to a formatted ring and resumes where the shared state says:
    /// the producer line's epoch, the consumer's acknowledgement, then every
    /// slot after it that is committed in this epoch (SPEC §5.6).
    public init(memory: Memory, layout: RingLayout) throws(RingError) {
        self.memory = memory
        self.layout = layout
        self.scratch = Scratch(bytes: layout.slotSize)
        // Own line: a relaxed read after invalidate (a restarted producer may
        // run on a node whose cache never saw its predecessor's writes).
        memory.invalidate(at: layout.producerLine, count: memory.lineSize)
        memory.fence(.full)
        epoch = memory.load64(at: layout.epochOffset, ordering: .acquiring)
        guard epoch > 0 else { throw .notARing(reason: "producer epoch is 0: the ring was never formatted") }
        let (consumed, acked, request) = readConsumerLine()
        // Whatever a reset of an earlier life left of older epochs goes,
        // awaited or already acknowledged (seeds 54847, 134789).
        finishInterruptedReset()
        guard acked == epoch else {
            awaitingAck = true
            return
        }
        if request == epoch &+ 1, request > epoch {
            // The consumer lost its place and asked for a reset: serve it
            // before posting anything (SPEC §5.2 producer step 3; posting
            // over the slots it lost its place in raced its polls of them,
            // issue 24, seed 68090).
            reset()
            return
        }
        cachedConsumed = consumed
        _posted = consumed
        // Resume: count slots committed after the ack in this epoch.
        while posted - consumed < UInt64(layout.slotCount), !memory.mutants.contains(.resumeWithoutScan) {
            let next = posted + 1
            let slot = layout.slotOffset(sequence: next)
            memory.invalidate(at: slot, count: RingLayout.slotHeaderBytes)
            memory.fence(.full)
            let word = memory.load64(at: slot, ordering: .acquiring)
            if word > next, (word &- next) % UInt64(layout.slotCount) == 0 {
                // A later lap (one or more) than the acknowledgement allows:
                // the consumer resumed behind what we had seen (SPEC §5.6). Reset.
                reset()
                return
            }
            guard word == next else { break }
            let slotEpoch = memory.read(at: slot + RingLayout.sEpoch, count: 4) { $0.loadUnaligned(as: UInt32.self) }
            guard UInt32(littleEndian: slotEpoch) == UInt32(truncatingIfNeeded: epoch) else { break }
            _posted = next
        }
    }

    /// Posts one message by copying `payload` into the next slot.
    /// - Returns: `.posted`, or `.full` / `.resetPending` with nothing written.
    /// - Throws: ``RingError/messageTooLarge(length:maxPayload:)``.
    @inlinable
    public mutating func post(kind: UInt16, flags: UInt16 = 0, requestId: UInt64, payload: UnsafeRawBufferPointer) throws(RingError) -> PostResult {
        try post(kind: kind, flags: flags, requestId: requestId, length: payload.count) { dst in
            if payload.count > 0 { dst.copyMemory(from: payload) }
        }
    }

    /// Posts one message whose payload `fill` writes in place (zero-copy on
    /// real memory). `fill` receives exactly `length` bytes.
    ///
    /// Publish sequence (SPEC §5.3), every step named. G is the memory's
    /// flush granule; the commit word sits in the slot's first granule.
    /// ```
    ///  1 write header (not the commit word) + payload into the slot
    ///  2 fence(.store)                 payload stores before their flush  ┐ only if the
    ///  3 flush [slot+G, slot+end)      payload beyond the first granule   │ message is
    ///  4 fence(.store)                 payload in memory before the commit┘ longer than G
    ///  5 store sequence (releasing)    the commit word; orders 1's stores in granule 0
    ///  6 flush [slot, slot+min(end,G)) header + commit word reach memory together
    ///  7 fence(.store)                 post complete before the next one
    /// ```
    @inlinable
    public mutating func post(kind: UInt16, flags: UInt16 = 0, requestId: UInt64, length: Int,
                              fill: (UnsafeMutableRawBufferPointer) -> Void) throws(RingError) -> PostResult {
        guard length >= 0, length <= layout.maxPayload else {
            throw .messageTooLarge(length: length, maxPayload: layout.maxPayload)
        }
        if awaitingAck || posted &- cachedConsumed >= UInt64(layout.slotCount) {
            if memory.mutants.contains(.fullRingNeverRechecked), !awaitingAck { return .full }   // simulator only (§7.4)
            if let blocked = try refreshConsumer() { return blocked }
        }
        let seq = posted &+ 1
        let slot = layout.slotOffset(sequence: seq)
        let end = RingLayout.slotHeaderBytes &+ length
        let epochWord = UInt32(truncatingIfNeeded: epoch)
        // 1. Header and payload are composed in private memory, checksummed
        //    there, then copied into the slot in one burst: the consumer polls
        //    this very line, and a slow in-place composition would let its
        //    invalidates steal the line between our stores (SPEC §5.3).
        //    The commit word (bytes 0..<8) is untouched.
        let staged = UnsafeMutableRawBufferPointer(rebasing: scratch.bytes[0..<end])
        staged.storeBytes(of: seq.littleEndian, toByteOffset: 0, as: UInt64.self)
        staged.storeBytes(of: epochWord.littleEndian, toByteOffset: RingLayout.sEpoch, as: UInt32.self)
        staged.storeBytes(of: kind.littleEndian, toByteOffset: RingLayout.sKind, as: UInt16.self)
        staged.storeBytes(of: flags.littleEndian, toByteOffset: RingLayout.sFlags, as: UInt16.self)
        staged.storeBytes(of: UInt32(length).littleEndian, toByteOffset: RingLayout.sLength, as: UInt32.self)
        staged.storeBytes(of: requestId.littleEndian, toByteOffset: RingLayout.sRequest, as: UInt64.self)
        fill(UnsafeMutableRawBufferPointer(rebasing: staged[RingLayout.slotHeaderBytes...]))
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(staged), skipping: RingLayout.sCRC..<RingLayout.sRequest)
        staged.storeBytes(of: crc.littleEndian, toByteOffset: RingLayout.sCRC, as: UInt32.self)
        memory.write(at: slot &+ 8, count: end &- 8) { b in
            b.copyMemory(from: UnsafeRawBufferPointer(rebasing: staged[8...]))
        }
        let mutants = memory.mutants
        let granule = memory.flushGranule
        // 2–4. Payload beyond the first granule reaches memory before the commit.
        if end > granule {
            if !mutants.contains(.noFenceBeforeCommit) { memory.fence(.store) }
            if !mutants.contains(.noFlushAfterPost) {
                let count = mutants.contains(.partialPayloadFlush) ? min(end &- granule, granule) : end &- granule
                memory.flush(at: slot &+ granule, count: count)
            }
            if !mutants.contains(.noFenceBeforeCommit) && !mutants.contains(.noFenceAfterPayloadFlush) { memory.fence(.store) }
        }
        // 5–7. Commit word, then the granule that holds it and the header.
        memory.store64(seq, at: slot, ordering: .releasing)
        if !mutants.contains(.noFlushAfterPost) { memory.flush(at: slot, count: min(end, granule)) }
        memory.fence(.store)
        _posted = seq
        return .posted(sequence: seq)
    }

    /// Re-reads the consumer line (SPEC §5.3 "full"): returns nil when there
    /// is room now, else why not. Also serves a consumer's reset request.
    @usableFromInline
    mutating func refreshConsumer() throws(RingError) -> PostResult? {
        let (consumed, acked, request) = readConsumerLine()
        // A consumer requests epoch + 1 of the epoch it saw, which is never
        // ahead of this producer's: anything beyond epoch + 1 is corruption,
        // not a request — serving it would reset forever (SPEC §5.6).
        // While a reset awaits its acknowledgement the line may still hold
        // whatever damaged it; the consumer clears the request when it
        // adopts the new epoch (§5.6 step 4), so it is ignored until then
        // (throwing here re-attached and reset the ring forever, issue 23).
        if request > epoch &+ 1 {
            guard awaitingAck else {
                throw .corruptPeer("reset request \(request) for a ring in epoch \(epoch): only \(epoch &+ 1) can be requested")
            }
        } else if request > epoch { reset(); return .resetPending }
        if awaitingAck {
            guard acked == epoch, consumed == 0 else { return .resetPending }
            awaitingAck = false
        }
        guard acked == epoch else {
            // An older epoch acknowledged after this one was: the consumer's
            // adoption reached this producer (a snoop of its dirty line) and
            // was then lost in its crash. As when `consumed` goes back, only
            // a reset puts both ends in step again (SPEC §5.3 step 2.3).
            if acked < epoch { reset(); return .resetPending }
            throw .corruptPeer("consumer acknowledges epoch \(acked) but the ring is in epoch \(epoch)")
        }
        guard consumed <= posted else {
            throw .corruptPeer("consumer acknowledges \(consumed), outside [\(cachedConsumed), \(posted)]")
        }
        if consumed < cachedConsumed {
            // The acknowledgement went back: the consumer restarted from the
            // value its memory kept, and slots it had acknowledged are reused
            // already. Only a reset puts both ends in step again (SPEC §5.6).
            reset()
            return .resetPending
        }
        cachedConsumed = consumed
        return posted &- consumed >= UInt64(layout.slotCount) ? .full : nil
    }

    /// At every attach (SPEC §5.2 producer step 2): finish the step 2 of a
    /// reset that a producer which died mid-reset left undone — clear every
    /// commit word whose slot carries another epoch (whether or not the
    /// consumer has acknowledged the reset since). A stale commit word is
    /// not harmless: a snoop of this producer's dirty slot line can show
    /// the consumer the new epoch's header beside it (a bad sequence or a
    /// failed CRC; issue 24, seeds 54847, 134789). Slots of the current
    /// epoch keep theirs (posted before a crash, they may yet be delivered).
    mutating func finishInterruptedReset() {
        let low = UInt32(truncatingIfNeeded: epoch)
        var cleared = false
        for i in 0..<layout.slotCount {
            let slot = layout.slotsOffset + i * layout.slotSize
            memory.invalidate(at: slot, count: RingLayout.slotHeaderBytes)
            memory.fence(.full)
            let word = memory.load64(at: slot, ordering: .acquiring)
            let slotEpoch = memory.read(at: slot + RingLayout.sEpoch, count: 4) { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
            guard word != 0, slotEpoch != low else { continue }
            memory.store64(0, at: slot, ordering: .relaxed)
            memory.flush(at: slot, count: 8)
            cleared = true
        }
        if cleared { memory.fence(.store) }
    }

    /// An idle producer's look at the consumer line (SPEC §5.3 "Idle"):
    /// serves a pending reset request (exactly epoch + 1), which otherwise
    /// waits for the next post that finds the ring full — forever, if
    /// nothing more is posted. Anything else in the line is left to the
    /// next post's checks. Returns whether it reset.
    public mutating func serveResetRequest() -> Bool {
        let (_, _, request) = readConsumerLine()
        guard request == epoch &+ 1, request > epoch else { return false }
        reset()
        return true
    }

    /// Observe the consumer line: invalidate; fence; read (SPEC §5.3).
    @usableFromInline
    func readConsumerLine() -> (consumed: UInt64, ackEpoch: UInt64, resetRequest: UInt64) {
        memory.invalidate(at: layout.consumedOffset, count: 24)
        memory.fence(.full)
        let acked = memory.load64(at: layout.ackEpochOffset, ordering: .acquiring)
        let consumed = memory.load64(at: layout.consumedOffset, ordering: .acquiring)
        let request = memory.load64(at: layout.resetRequestOffset, ordering: .acquiring)
        return (consumed, acked, request)
    }

    /// Starts a reset (SPEC §5.6): publishes epoch + 1 first — from then on
    /// the reset is decided, even if this producer crashes — then clears
    /// every slot's commit word, and posts nothing until the consumer
    /// acknowledges the new epoch. Slots of an older epoch left behind read
    /// as empty to the consumer (§5.4), so the clearing is hygiene, not
    /// what makes the reset safe.
    public mutating func reset() {
        epoch &+= 1   // the epoch was read from shared memory at attach: wrap, never trap
        memory.store64(epoch, at: layout.epochOffset, ordering: .releasing)
        memory.flush(at: layout.epochOffset, count: 8)
        memory.fence(.store)
        for i in 0..<layout.slotCount {
            let slot = layout.slotsOffset + i * layout.slotSize
            memory.store64(0, at: slot, ordering: .relaxed)
            memory.flush(at: slot, count: 8)
        }
        memory.fence(.store)
        _posted = 0
        cachedConsumed = 0
        awaitingAck = true
    }
}

/// A private, 8-byte aligned byte buffer owned by one producer.
@usableFromInline final class Scratch {
    @usableFromInline let bytes: UnsafeMutableRawBufferPointer
    init(bytes count: Int) {
        bytes = .allocate(byteCount: count, alignment: 8)
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
    }
    deinit { bytes.deallocate() }
}
