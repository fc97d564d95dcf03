#if canImport(Glibc)
import Glibc
#endif

/// One `mmap`ed range of shared memory; `munmap`s it when released.
///
/// The only owner of the raw base pointer. It never escapes: callers reach the
/// bytes through ``MappedMemory`` (offset-addressed, bounds-checked) which
/// keeps the mapping alive by holding a reference to it.
///
/// ```
///   fd ──mmap(MAP_SHARED)──▶ base ─────────────── base+size
///                             │<──── size bytes ───▶│
///   MappedMemory(offset o) ─▶ base+o   (o < size, checked)
/// ```
public final class Mapping: @unchecked Sendable {
    @usableFromInline let base: UnsafeMutableRawPointer
    public let size: Int

    /// Maps `size` bytes of `fd` at file offset 0, read-write and shared.
    /// `writable: false` maps it read-only (a store's readers, SPEC §9.7):
    /// a store through it then faults instead of changing shared bytes.
    public init(fd: Int32, size: Int, subject: String, writable: Bool = true) throws(SystemCallError) {
        precondition(size > 0)
        let p = mmap(nil, size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw SystemCallError.last("mmap", subject: subject,
                                       hint: "check the size and that the device supports shared mappings")
        }
        self.base = p
        self.size = size
    }

    /// An anonymous shared mapping (zero-filled), for in-process tests and
    /// for processes related by fork.
    public init(anonymous size: Int) throws(SystemCallError) {
        precondition(size > 0)
        let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)
        guard let p, p != MAP_FAILED else { throw SystemCallError.last("mmap", subject: "anonymous \(size) bytes") }
        self.base = p
        self.size = size
    }

    deinit { munmap(base, size) }

    /// The seam over this mapping. `flushes: false` is the benchmark-only
    /// `--no-flush` mode (SPEC §3.5); it never ships as a default.
    public func memory(lineSize: LineSize, flushes: Bool = true) -> MappedMemory {
        MappedMemory(mapping: self, lineSize: lineSize.bytes, flushes: flushes)
    }

    /// Populates every page of the mapping for writing now
    /// (`MADV_POPULATE_WRITE`, Linux 5.14+): the pages are allocated and
    /// mapped, so a later write takes no page fault — and a file that cannot
    /// hold the mapping fails here, not with SIGBUS on some later write.
    /// `forWriting: false` (a read-only mapping) maps the pages for reading
    /// (`MADV_POPULATE_READ`).
    public func populate(subject: String, forWriting: Bool = true) throws(SystemCallError) {
        // <linux/mman.h>; not in every libc's headers.
        let advice: Int32 = forWriting ? 23 : 22   // MADV_POPULATE_WRITE : MADV_POPULATE_READ
        guard madvise(base, size, advice) == 0 else {
            throw SystemCallError.last(forWriting ? "madvise(MADV_POPULATE_WRITE)" : "madvise(MADV_POPULATE_READ)", subject: subject,
                                       hint: "the file system may lack \(size) free bytes (df /dev/shm), or the kernel predates 5.14: pass --no-prefault")
        }
    }

    /// Maps the pages of `[offset, offset+count)` for reading now
    /// (`MADV_POPULATE_READ`), best effort: a range a peer reads on every
    /// lookup (a directory index) costs no page fault on the first reads.
    public func prefaultForReading(offset: Int, count: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = max(0, offset) / page * page
        let end = min(size, offset + count)
        guard end > start else { return }
        _ = madvise(base + start, end - start, 22)   // MADV_POPULATE_READ; older kernels: faults as before
    }

    /// Asks for transparent huge pages over this mapping (`MADV_HUGEPAGE`).
    /// For a tmpfs file this takes effect only if
    /// /sys/kernel/mm/transparent_hugepage/shmem_enabled is `advise`,
    /// `within_size` or `always`.
    public func adviseHugePages(subject: String) throws(SystemCallError) {
        let madvHugepage: Int32 = 14
        guard madvise(base, size, madvHugepage) == 0 else {
            throw SystemCallError.last("madvise(MADV_HUGEPAGE)", subject: subject, hint: "the kernel lacks transparent huge pages: run without --huge-pages")
        }
    }

    /// Hands the raw range to `body` — for kernel calls such as `mbind`.
    public func withUnsafeRange<R>(_ body: (UnsafeMutableRawPointer, Int) throws -> R) rethrows -> R {
        try body(base, size)
    }
}
