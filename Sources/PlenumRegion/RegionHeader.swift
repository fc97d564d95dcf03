import PlenumMemory

/// The identity line of a region (SPEC.md §4.1), decoded and validated.
public struct RegionHeader: Equatable, Sendable {
    public var lineSize: LineSize
    public var regionSize: Int
    /// Owning node id, or ``RegionLayout/poolOwner`` for a pool region.
    public var ownerNode: UInt32
    public var segmentCapacity: Int
    public var segmentTableOffset: Int
    public var dataOffset: Int
    public var createdNanos: UInt64

    public init(lineSize: LineSize, regionSize: Int, ownerNode: UInt32, createdNanos: UInt64) {
        self.lineSize = lineSize
        self.regionSize = regionSize
        self.ownerNode = ownerNode
        self.segmentCapacity = RegionLayout.segmentCapacity
        self.segmentTableOffset = RegionLayout.segmentTableOffset(line: lineSize.bytes)
        self.dataOffset = RegionLayout.dataOffset(line: lineSize.bytes)
        self.createdNanos = createdNanos
    }

    /// Owner only. Publishes line 0 (SPEC §4.3): write; flush; fence.
    /// Line 0 is immutable afterwards, so readers need one invalidate only.
    public func write<M: SharedMemory>(to memory: M) {
        memory.write(at: 0, count: RegionLayout.identityBytes) { b in
            b.initializeMemory(as: UInt8.self, repeating: 0)
            b.storeBytes(of: RegionLayout.magic.littleEndian, toByteOffset: RegionLayout.magicOffset, as: UInt64.self)
            b.storeBytes(of: RegionLayout.version.littleEndian, toByteOffset: RegionLayout.versionOffset, as: UInt32.self)
            b.storeBytes(of: UInt32(lineSize.bytes).littleEndian, toByteOffset: RegionLayout.lineSizeOffset, as: UInt32.self)
            b.storeBytes(of: UInt64(regionSize).littleEndian, toByteOffset: RegionLayout.regionSizeOffset, as: UInt64.self)
            b.storeBytes(of: ownerNode.littleEndian, toByteOffset: RegionLayout.ownerOffset, as: UInt32.self)
            b.storeBytes(of: UInt32(segmentCapacity).littleEndian, toByteOffset: RegionLayout.segmentCapacityOffset, as: UInt32.self)
            b.storeBytes(of: UInt64(segmentTableOffset).littleEndian, toByteOffset: RegionLayout.segmentTableOffsetOffset, as: UInt64.self)
            b.storeBytes(of: UInt64(dataOffset).littleEndian, toByteOffset: RegionLayout.dataOffsetOffset, as: UInt64.self)
            b.storeBytes(of: createdNanos.littleEndian, toByteOffset: RegionLayout.createdOffset, as: UInt64.self)
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<RegionLayout.headerCRCCovered]))
            b.storeBytes(of: crc.littleEndian, toByteOffset: RegionLayout.headerCRCOffset, as: UInt32.self)
        }
        // Publish (SPEC §4.3): fence; flush line 0; fence so it precedes any later post.
        memory.fence(.store)
        memory.flush(at: 0, count: RegionLayout.identityBytes)
        memory.fence(.store)
    }

    /// Observes and validates line 0 (SPEC §4.3): invalidate; fence; read.
    /// `mappedSize` is how many bytes the reader has mapped.
    public static func read<M: SharedMemory>(from memory: M, mappedSize: Int, path: String) throws(RegionError) -> RegionHeader {
        guard mappedSize >= RegionLayout.identityBytes else {
            throw .badMagic(path: path, found: 0)
        }
        memory.invalidate(at: 0, count: RegionLayout.identityBytes)
        memory.fence(.full)
        return try memory.read(at: 0, count: RegionLayout.identityBytes) { (b) throws(RegionError) -> RegionHeader in
            func u64(_ o: Int) -> UInt64 { UInt64(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt64.self)) }
            func u32(_ o: Int) -> UInt32 { UInt32(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
            let magic = u64(RegionLayout.magicOffset)
            guard magic == RegionLayout.magic else { throw .badMagic(path: path, found: magic) }
            let version = u32(RegionLayout.versionOffset)
            guard version == RegionLayout.version else { throw .unsupportedVersion(path: path, found: version) }
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<RegionLayout.headerCRCCovered]))
            guard crc == u32(RegionLayout.headerCRCOffset) else { throw .headerChecksum(path: path) }
            let rawLine = u32(RegionLayout.lineSizeOffset)
            guard let line = try? LineSize(Int(rawLine)) else { throw .badLineSize(path: path, found: rawLine) }
            let size = u64(RegionLayout.regionSizeOffset)
            guard size == UInt64(mappedSize) else { throw .sizeMismatch(path: path, header: size, mapped: mappedSize) }
            var header = RegionHeader(lineSize: line, regionSize: mappedSize, ownerNode: u32(RegionLayout.ownerOffset),
                                      createdNanos: u64(RegionLayout.createdOffset))
            // The derived fields must equal what this layout computes: a peer
            // cannot move the table or data area (brief invariant 6).
            let cap = u32(RegionLayout.segmentCapacityOffset)
            guard Int(cap) == header.segmentCapacity else { throw .corruptHeader(path: path, field: "segmentCapacity", value: UInt64(cap)) }
            let table = u64(RegionLayout.segmentTableOffsetOffset)
            guard table == UInt64(header.segmentTableOffset) else { throw .corruptHeader(path: path, field: "segmentTableOffset", value: table) }
            let data = u64(RegionLayout.dataOffsetOffset)
            guard data == UInt64(header.dataOffset), header.dataOffset < mappedSize else {
                throw .corruptHeader(path: path, field: "dataOffset", value: data)
            }
            header.segmentCapacity = Int(cap)
            return header
        }
    }
}
