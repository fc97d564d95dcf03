import PlenumMemory

/// What a segment of a region holds.
public enum SegmentKind: UInt32, Sendable, CustomStringConvertible {
    case ring = 1
    case raw = 2

    public var description: String {
        switch self {
        case .ring: return "ring"
        case .raw: return "raw"
        }
    }
}

/// One entry of the segment table (SPEC.md §4.2): a named, line-aligned range
/// of the data area. For a ring, `producer` and `consumer` are node ids.
public struct Segment: Equatable, Sendable {
    public var kind: SegmentKind
    public var producer: UInt32
    public var consumer: UInt32
    public var offset: Int
    public var length: Int
    public var name: String
}

/// Reads and appends segment table entries (SPEC.md §4.2–4.3).
///
/// Only the region's owner appends, and only one process of the owner at a
/// time (the creating command or the store daemon). Readers validate every
/// entry: count ≤ capacity, CRC, offset and length inside the data area.
public enum SegmentTable {
    /// Owner only. Publish (SPEC §4.3): write entry; flush; fence; write the
    /// count (commit word) and cursor; flush; fence.
    @discardableResult
    public static func append<M: SharedMemory>(
        _ kind: SegmentKind, name: String, length: Int, producer: UInt32 = 0, consumer: UInt32 = 0,
        alignment: Int = 4096, in memory: M, header: RegionHeader
    ) throws(RegionError) -> Segment {
        let nameBytes = Array(name.utf8)
        guard !nameBytes.isEmpty, nameBytes.count < RegionLayout.segmentNameBytes, !nameBytes.contains(0) else {
            throw .badSegmentName(name)
        }
        let line = header.lineSize.bytes
        let existing = try list(in: memory, header: header)
        guard !existing.contains(where: { $0.name == name }) else { throw .badSegmentName(name + "\" (already used)") }
        guard existing.count < header.segmentCapacity else { throw .segmentTableFull(capacity: header.segmentCapacity) }
        // Owner's own line 1: relaxed reads of values only it wrote.
        var cursor = Int(memory.load64(at: RegionLayout.dataCursorOffset(line: line), ordering: .relaxed))
        if cursor == 0 { cursor = header.dataOffset }
        let align = max(alignment, line)
        let start = (cursor + align - 1) / align * align
        let padded = header.lineSize.roundUp(length)
        guard length > 0, start <= header.regionSize, padded <= header.regionSize - start else {
            throw .outOfSpace(requested: padded, available: max(0, header.regionSize - start))
        }
        let segment = Segment(kind: kind, producer: producer, consumer: consumer, offset: start, length: padded, name: name)
        let entry = RegionLayout.segmentEntryOffset(line: line, index: existing.count)
        memory.write(at: entry, count: RegionLayout.segmentEntryBytes) { b in
            b.initializeMemory(as: UInt8.self, repeating: 0)
            b.storeBytes(of: kind.rawValue.littleEndian, toByteOffset: RegionLayout.entryKind, as: UInt32.self)
            b.storeBytes(of: producer.littleEndian, toByteOffset: RegionLayout.entryProducer, as: UInt32.self)
            b.storeBytes(of: consumer.littleEndian, toByteOffset: RegionLayout.entryConsumer, as: UInt32.self)
            b.storeBytes(of: UInt64(start).littleEndian, toByteOffset: RegionLayout.entryOffset, as: UInt64.self)
            b.storeBytes(of: UInt64(padded).littleEndian, toByteOffset: RegionLayout.entryLength, as: UInt64.self)
            for (i, c) in nameBytes.enumerated() { b[RegionLayout.entryName + i] = c }
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<RegionLayout.entryCRC]))
            b.storeBytes(of: crc.littleEndian, toByteOffset: RegionLayout.entryCRC, as: UInt32.self)
        }
        memory.fence(.store)
        memory.flush(at: entry, count: RegionLayout.segmentEntryBytes)
        memory.fence(.store)
        // Commit: cursor then count, same line (one write-back carries both);
        // the fence above orders the entry before them.
        memory.store64(UInt64(start + padded), at: RegionLayout.dataCursorOffset(line: line), ordering: .relaxed)
        memory.store64(UInt64(existing.count + 1), at: RegionLayout.segmentCountOffset(line: line), ordering: .releasing)
        memory.flush(at: line, count: 16)
        memory.fence(.store)
        return segment
    }

    /// Observe (SPEC §4.3): invalidate line 1; fence; read count; invalidate
    /// entries; fence; read and validate each entry.
    public static func list<M: SharedMemory>(in memory: M, header: RegionHeader) throws(RegionError) -> [Segment] {
        let line = header.lineSize.bytes
        memory.invalidate(at: line, count: 16)
        memory.fence(.full)
        let rawCount = memory.load64(at: RegionLayout.segmentCountOffset(line: line), ordering: .acquiring)
        guard rawCount <= UInt64(header.segmentCapacity) else {
            throw .corruptHeader(path: "region", field: "segmentCount", value: rawCount)
        }
        let count = Int(rawCount)
        guard count > 0 else { return [] }
        let table = RegionLayout.segmentTableOffset(line: line)
        memory.invalidate(at: table, count: count * RegionLayout.segmentEntryBytes)
        memory.fence(.full)
        var result: [Segment] = []
        for i in 0..<count {
            let entry = RegionLayout.segmentEntryOffset(line: line, index: i)
            let segment = try memory.read(at: entry, count: RegionLayout.segmentEntryBytes) { (b) throws(RegionError) -> Segment in
                func u64(_ o: Int) -> UInt64 { UInt64(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
                func u32(_ o: Int) -> UInt32 { UInt32(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
                let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<RegionLayout.entryCRC]))
                guard crc == u32(RegionLayout.entryCRC) else { throw .corruptSegment(index: i, reason: "checksum") }
                guard let kind = SegmentKind(rawValue: u32(RegionLayout.entryKind)) else {
                    throw .corruptSegment(index: i, reason: "unknown kind \(u32(RegionLayout.entryKind))")
                }
                let offset = u64(RegionLayout.entryOffset), length = u64(RegionLayout.entryLength)
                guard offset >= UInt64(header.dataOffset), offset <= UInt64(header.regionSize),
                      length <= UInt64(header.regionSize) - offset, length > 0 else {
                    throw .corruptSegment(index: i, reason: "range [\(offset), +\(length)) outside the data area")
                }
                let nameField = UnsafeRawBufferPointer(rebasing: b[RegionLayout.entryName..<(RegionLayout.entryName + RegionLayout.segmentNameBytes)])
                let nameBytes = nameField.prefix(while: { $0 != 0 })
                guard let name = String(validating: nameBytes, as: UTF8.self) else {
                    throw .corruptSegment(index: i, reason: "name is not UTF-8")
                }
                return Segment(kind: kind, producer: u32(RegionLayout.entryProducer), consumer: u32(RegionLayout.entryConsumer),
                               offset: Int(offset), length: Int(length), name: name)
            }
            result.append(segment)
        }
        return result
    }

    public static func find<M: SharedMemory>(_ name: String, in memory: M, header: RegionHeader) throws(RegionError) -> Segment {
        guard let s = try list(in: memory, header: header).first(where: { $0.name == name }) else {
            throw .segmentNotFound(name: name)
        }
        return s
    }
}
