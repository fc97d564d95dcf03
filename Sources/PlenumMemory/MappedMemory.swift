import Atomics
import CPlenumShim

/// The real-memory implementation of the seam (SPEC §3): loads and stores on
/// an `mmap`ed range, flushes by CLFLUSHOPT/CLFLUSH, DC CIVAC or DCBF, fences
/// by SFENCE/MFENCE, DSB ISH or HWSYNC.
///
/// Invariants (checked with `precondition`, because an out-of-range offset
/// here would be memory corruption, not a recoverable error):
/// ```
///   0 <= offset, 0 <= count, offset + count <= size
///   8-byte atomics: offset % 8 == 0
/// ```
/// A logical line (``lineSize``) may span several hardware lines (128-byte
/// logical lines on a 64-byte x86 cache). ``flush(at:count:)`` acts on the
/// hardware lines that overlap the byte range it is given — the granule is
/// the hardware line — and layouts padded to the logical line keep any two
/// writers apart on every architecture.
public struct MappedMemory: SharedMemory, @unchecked Sendable {
    @usableFromInline let mapping: Mapping
    @usableFromInline let base: UnsafeMutableRawPointer
    public let size: Int
    public let lineSize: Int
    public let flushGranule: Int
    /// False only in the benchmark-only `--no-flush` mode.
    public let flushes: Bool

    init(mapping: Mapping, lineSize: Int, flushes: Bool) {
        self.mapping = mapping
        self.base = mapping.base
        self.size = mapping.size
        self.lineSize = lineSize
        self.flushes = flushes
        self.flushGranule = min(lineSize, Int(plenum_hw_line_size()))
    }

    @inlinable func checked(_ offset: Int, _ count: Int) -> UnsafeMutableRawPointer {
        precondition(offset >= 0 && count >= 0 && offset <= size &- count,
                     "shared memory access [\(offset), +\(count)) outside [0, \(size))")
        return base + offset
    }

    @inlinable func atomic(_ offset: Int) -> UnsafeAtomic<UInt64> {
        precondition(offset & 7 == 0, "unaligned 8-byte atomic at \(offset)")
        let p = checked(offset, 8).assumingMemoryBound(to: UInt64.AtomicRepresentation.self)
        return UnsafeAtomic(at: p)
    }

    @inlinable public func load64(at offset: Int, ordering: LoadOrdering) -> UInt64 {
        switch ordering {
        case .relaxed: return atomic(offset).load(ordering: .relaxed)
        case .acquiring: return atomic(offset).load(ordering: .acquiring)
        }
    }

    @inlinable public func store64(_ value: UInt64, at offset: Int, ordering: StoreOrdering) {
        switch ordering {
        case .relaxed: atomic(offset).store(value, ordering: .relaxed)
        case .releasing: atomic(offset).store(value, ordering: .releasing)
        }
    }

    @inlinable public func read<R, E: Error>(at offset: Int, count: Int, _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: checked(offset, count), count: count))
    }

    @inlinable public func write<R, E: Error>(at offset: Int, count: Int, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeMutableRawBufferPointer(start: checked(offset, count), count: count))
    }

    @inlinable public func flush(at offset: Int, count: Int) {
        guard flushes, count > 0 else { return }
        plenum_flush_range(checked(offset, count), count)
    }

    @inlinable public func invalidate(at offset: Int, count: Int) {
        guard flushes, count > 0 else { return }
        plenum_invalidate_range(checked(offset, count), count)
    }

    @inlinable public func fence(_ kind: Fence) {
        switch kind {
        case .store: plenum_fence_store()
        case .full: plenum_fence_full()
        }
    }
}
