/// The memory-access seam (SPEC.md §3).
///
/// Every load, store, flush and fence that touches shared (disaggregated)
/// memory goes through a type conforming to `SharedMemory`. Two
/// implementations exist: ``MappedMemory`` (an `mmap`ed region and real CPU
/// instructions) and the simulator's non-coherent model in `Simulator/`.
/// Protocol code (`RingProducer`, `RingConsumer`, region headers) is generic
/// over this protocol — never existential — so release builds specialise the
/// hot path for ``MappedMemory``.
///
/// Addressing is by byte offset from the start of the mapped region (brief
/// invariant 5: no pointers in shared memory). Implementations trap on an
/// out-of-bounds offset: callers validate everything they read from shared
/// memory *before* using it as an offset, so a trap here is a Plenum bug, never
/// a peer's doing.
///
/// ```
///   offset 0                                                   size
///   |<- line ->|<- line ->|<- line ->|   ...   |<- line ->|
///   +----------+----------+----------+---------+----------+
///   one writer per line (SPEC §2.1); flush/invalidate are per line
/// ```
public protocol SharedMemory {
    /// The coherence line size L of this memory (64, 128 or 256). Every shared
    /// layout pads to it; flushes act on whole lines of this size.
    var lineSize: Int { get }
    /// The unit in which this memory writes back and drops lines: the CPU's
    /// cache line for real memory (≤ ``lineSize``), the model's line in the
    /// simulator. Protocol code flushes exact byte ranges; a write-back is
    /// atomic per granule, never across granules (SPEC §3.2).
    var flushGranule: Int { get }
    /// Size in bytes of the addressable range.
    var size: Int { get }

    /// An 8-byte, single-copy-atomic load from this node's view of the line.
    /// `offset` must be 8-byte aligned. May return a stale cached value: call
    /// ``invalidate(at:count:)`` and ``fence(_:)`` first to observe a peer.
    func load64(at offset: Int, ordering: LoadOrdering) -> UInt64

    /// An 8-byte, single-copy-atomic store into this node's cache only. It
    /// reaches memory when the line is flushed or evicted.
    func store64(_ value: UInt64, at offset: Int, ordering: StoreOrdering)

    /// Reads `count` bytes at `offset` as one view. The view is valid only
    /// inside `body`; the real implementation hands out the mapped bytes
    /// (zero-copy), the simulator a snapshot of its node's view.
    func read<R, E: Error>(at offset: Int, count: Int, _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R

    /// Writes `count` bytes at `offset` through a mutable view filled by `body`.
    func write<R, E: Error>(at offset: Int, count: Int, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R

    /// Write-back (if dirty) of every granule that overlaps
    /// `[offset, offset+count)`; the line may stay in this node's cache, clean
    /// (CLWB), or be dropped — SPEC §3.2. Not ordered with later stores or
    /// loads until a ``fence(_:)``.
    func flush(at offset: Int, count: Int)

    /// Drop lines this node never wrote so the next load misses — SPEC §3.3.
    /// The hardware has no invalidate-only instruction on POWER9, so this
    /// writes back a dirty line too (CLFLUSHOPT, DC CIVAC, DCBF — never CLWB):
    /// it is safe because a reader never dirties the lines it invalidates
    /// (brief invariant 3).
    func invalidate(at offset: Int, count: Int)

    /// A fence (SPEC §3.4).
    func fence(_ kind: Fence)

    /// Protocol steps this memory asks the ring to skip (SPEC §7.4). Real
    /// memory uses the default, `[]`; only the simulator sets mutants.
    var mutants: ProtocolMutants { get }
}

/// Memory ordering of a seam load, named at every call site (SPEC §3.1).
public enum LoadOrdering: Sendable {
    /// No ordering with other accesses.
    case relaxed
    /// Later loads and stores of this thread are not reordered before it.
    case acquiring
}

/// Memory ordering of a seam store, named at every call site (SPEC §3.1).
public enum StoreOrdering: Sendable {
    /// No ordering with other accesses.
    case relaxed
    /// Earlier loads and stores of this thread are not reordered after it.
    case releasing
}

/// Fence kinds of the seam (SPEC §3.4).
public enum Fence: Sendable {
    /// Orders earlier stores *and flushes* before later stores and flushes.
    /// x86_64 SFENCE, aarch64 DSB ISH, ppc64le HWSYNC.
    case store
    /// Orders earlier loads, stores and flushes before later loads and stores.
    /// x86_64 MFENCE, aarch64 DSB ISH, ppc64le HWSYNC.
    case full
}
