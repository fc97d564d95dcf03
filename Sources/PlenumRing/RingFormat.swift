import PlenumMemory
import PlenumRegion

/// Creating, describing and attaching rings in a region (SPEC.md §5.2).
public enum Ring {
    /// Formats a ring at `layout.base` (the creator — normally the region's
    /// owner — is the one writer of every line until it hands the ring over):
    /// zero the slots, write the consumer line (epoch 1, consumed 0), the
    /// producer line (epoch 1), then the descriptor, each flushed and fenced.
    /// `epoch` (default 1) lets a reused ring start above its previous life,
    /// so peers of that life fail the epoch checks.
    public static func format<M: SharedMemory>(_ layout: RingLayout, producer: UInt32, consumer: UInt32, epoch: UInt64 = 1, in memory: M) {
        precondition(epoch > 0)
        memory.write(at: layout.producerLine, count: layout.totalBytes - layout.lineSize) {
            _ = $0.initializeMemory(as: UInt8.self, repeating: 0)
        }
        memory.fence(.store)
        memory.flush(at: layout.producerLine, count: layout.totalBytes - layout.lineSize)
        memory.fence(.store)
        memory.store64(0, at: layout.consumedOffset, ordering: .relaxed)
        memory.store64(epoch, at: layout.ackEpochOffset, ordering: .relaxed)
        memory.store64(epoch, at: layout.epochOffset, ordering: .relaxed)
        memory.fence(.store)
        memory.flush(at: layout.consumerLine, count: memory.lineSize)
        memory.flush(at: layout.producerLine, count: memory.lineSize)
        memory.fence(.store)
        writeDescriptor(layout, producer: producer, consumer: consumer, in: memory)
    }

    /// The descriptor's bytes [0, 36) for a ring of `layout` (SPEC §5.1).
    static func descriptor(_ layout: RingLayout, producer: UInt32, consumer: UInt32) -> [UInt8] {
        var d = [UInt8](repeating: 0, count: RingLayout.dCRC + 4)
        d.withUnsafeMutableBytes { b in
            b.storeBytes(of: RingLayout.magic.littleEndian, toByteOffset: RingLayout.dMagic, as: UInt64.self)
            b.storeBytes(of: RingLayout.version.littleEndian, toByteOffset: RingLayout.dVersion, as: UInt32.self)
            b.storeBytes(of: UInt32(layout.lineSize).littleEndian, toByteOffset: RingLayout.dLine, as: UInt32.self)
            b.storeBytes(of: UInt32(layout.slotCount).littleEndian, toByteOffset: RingLayout.dSlots, as: UInt32.self)
            b.storeBytes(of: UInt32(layout.slotSize).littleEndian, toByteOffset: RingLayout.dSlotSize, as: UInt32.self)
            b.storeBytes(of: producer.littleEndian, toByteOffset: RingLayout.dProducer, as: UInt32.self)
            b.storeBytes(of: consumer.littleEndian, toByteOffset: RingLayout.dConsumer, as: UInt32.self)
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<RingLayout.dCRC]))
            b.storeBytes(of: crc.littleEndian, toByteOffset: RingLayout.dCRC, as: UInt32.self)
        }
        return d
    }

    /// Format step 3 (SPEC §5.2): the descriptor's fields and CRC;
    /// fence(.store); flush [0, 36); fence(.store).
    static func writeDescriptor<M: SharedMemory>(_ layout: RingLayout, producer: UInt32, consumer: UInt32, in memory: M) {
        let d = descriptor(layout, producer: producer, consumer: consumer)
        d.withUnsafeBytes { src in memory.write(at: layout.descriptorOffset, count: src.count) { $0.copyMemory(from: src) } }
        memory.fence(.store)
        memory.flush(at: layout.descriptorOffset, count: d.count)
        memory.fence(.store)
    }

    /// The creator's repair of a damaged descriptor (SPEC §10.3 "Repair"):
    /// invalidate [0, 36); fence(.full); read; if the bytes differ from
    /// what format wrote, write them again as format step 3 does. The
    /// descriptor is immutable, so rewriting its one true value never races
    /// a reader: either read sees a descriptor that validates or none.
    /// Returns whether it rewrote.
    public static func repairDescriptor<M: SharedMemory>(_ layout: RingLayout, producer: UInt32, consumer: UInt32, in memory: M) -> Bool {
        let d = descriptor(layout, producer: producer, consumer: consumer)
        memory.invalidate(at: layout.descriptorOffset, count: d.count)
        memory.fence(.full)
        let intact = memory.read(at: layout.descriptorOffset, count: d.count) { b in b.elementsEqual(d) }
        if intact { return false }
        writeDescriptor(layout, producer: producer, consumer: consumer, in: memory)
        return true
    }

    /// Reads and validates the descriptor of the ring at `base`, inside a
    /// segment of `length` bytes (SPEC §5.2). Every field is checked before use.
    public static func describe<M: SharedMemory>(at base: Int, length: Int, in memory: M) throws(RingError) -> (layout: RingLayout, producer: UInt32, consumer: UInt32) {
        guard base >= 0, length >= 3 * memory.lineSize, base <= memory.size - length else {
            throw .tooSmall(segment: length, needed: 3 * memory.lineSize)
        }
        memory.invalidate(at: base, count: RingLayout.dCRC + 4)
        memory.fence(.full)
        let fields = memory.read(at: base, count: RingLayout.dCRC + 4) { b in
            (magic: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: RingLayout.dMagic, as: UInt64.self)),
             version: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: RingLayout.dVersion, as: UInt32.self)),
             line: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: RingLayout.dLine, as: UInt32.self)),
             slots: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: RingLayout.dSlots, as: UInt32.self)),
             slotSize: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: RingLayout.dSlotSize, as: UInt32.self)),
             producer: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: RingLayout.dProducer, as: UInt32.self)),
             consumer: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: RingLayout.dConsumer, as: UInt32.self)),
             crc: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: RingLayout.dCRC, as: UInt32.self)),
             computed: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<RingLayout.dCRC])))
        }
        guard fields.magic == RingLayout.magic else { throw .notARing(reason: "magic 0x\(String(fields.magic, radix: 16))") }
        guard fields.version == RingLayout.version else { throw .notARing(reason: "version \(fields.version), expected \(RingLayout.version)") }
        guard fields.crc == fields.computed else { throw .notARing(reason: "descriptor checksum mismatch") }
        guard Int(fields.line) == memory.lineSize else { throw .lineSizeMismatch(ring: Int(fields.line), memory: memory.lineSize) }
        let layout = try RingLayout(base: base, lineSize: Int(fields.line), slotCount: Int(fields.slots), slotSize: Int(fields.slotSize),
                                    sharedControlLine: memory.mutants.contains(.sharedControlLine))
        guard layout.totalBytes <= length else { throw .tooSmall(segment: length, needed: layout.totalBytes) }
        return (layout, fields.producer, fields.consumer)
    }

    /// Appends a ring segment named `name` to `region` and formats it.
    /// Owner only (the region's segment table has one writer).
    @discardableResult
    public static func create(in region: Region, name: String, slotCount: Int, slotSize: Int,
                              producer: UInt32, consumer: UInt32) throws -> RingLayout {
        let memory = region.memory()
        // Validate geometry before taking space in the table.
        let probe = try RingLayout(base: 0, lineSize: region.lineSize.bytes, slotCount: slotCount, slotSize: slotSize)
        let segment = try SegmentTable.append(.ring, name: name, length: probe.totalBytes, producer: producer,
                                              consumer: consumer, in: memory, header: region.header)
        let layout = try RingLayout(base: segment.offset, lineSize: region.lineSize.bytes, slotCount: slotCount, slotSize: slotSize)
        format(layout, producer: producer, consumer: consumer, in: memory)
        return layout
    }

    /// Finds the ring segment `name` in `region` and validates it.
    public static func open<M: SharedMemory>(_ name: String, in region: Region, memory: M) throws -> RingLayout {
        let segment = try SegmentTable.find(name, in: memory, header: region.header)
        guard segment.kind == .ring else { throw RingError.notARing(reason: "segment \"\(name)\" is \(segment.kind)") }
        return try describe(at: segment.offset, length: segment.length, in: memory).layout
    }
}
