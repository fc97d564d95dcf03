import PlenumMemory

/// The memory steps of invariant 4 (SPEC §2) on an object's range, shared by
/// the client library, the daemon and the simulator so that all three run
/// the same code (SPEC §9.4, §10.8). `memory` is the mapping of the region
/// the object lives in; offsets are the location's, region-relative.
///
/// ```
///  writer:  write bytes ─▶ writeBack: fence(.store) flush(range) fence(.store) ─▶ digest ─▶ seal
///  reader:  verify: invalidate(range) fence(.full) CRC32C(range) == digest ─▶ read in place
///  owner:   drop:   invalidate(range) fence(.full)   (before a grant, before a peer's seal)
/// ```
public enum ObjectMemory {
    /// Bytes of the object's range (at least one, so an empty object still
    /// names its line).
    @inlinable static func span(_ l: ObjectLocation) -> Int { max(1, l.dataSize + l.metadataSize) }

    /// Writer side: every line of the range written back before a seal or an
    /// abort (SPEC §10.8 writer side). Mutant `sealWithoutFlush` skips the flush.
    @inlinable public static func writeBack<M: SharedMemory>(_ memory: M, _ l: ObjectLocation) {
        memory.fence(.store)
        if !memory.mutants.contains(.sealWithoutFlush) { memory.flush(at: l.offset, count: span(l)) }
        memory.fence(.store)
    }

    /// The object's digest: CRC32C of data and metadata, as this node sees them.
    @inlinable public static func digest<M: SharedMemory>(_ memory: M, _ l: ObjectLocation) -> UInt64 {
        memory.read(at: l.offset, count: l.dataSize + l.metadataSize) { UInt64(CRC32C.checksum($0)) }
    }

    /// Reader side (SPEC §10.8): drop this node's lines of the range, then
    /// compare the digest. Mutant `noInvalidateOnAcquire` skips the drop.
    @inlinable public static func verify<M: SharedMemory>(_ memory: M, _ l: ObjectLocation, digest: UInt64) -> Bool {
        if !memory.mutants.contains(.noInvalidateOnAcquire) {
            memory.invalidate(at: l.offset, count: span(l))
            memory.fence(.full)
        }
        return self.digest(memory, l) == digest
    }

    /// Owner side (SPEC §10.8): write back and drop this node's lines of a
    /// range a peer is granted or has sealed.
    @inlinable public static func drop<M: SharedMemory>(_ memory: M, _ l: ObjectLocation) {
        memory.invalidate(at: l.offset, count: span(l))
        memory.fence(.full)
    }
}
