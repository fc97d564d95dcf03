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

    /// Hands the raw range to `body` — for kernel calls such as `mbind`.
    public func withUnsafeRange<R>(_ body: (UnsafeMutableRawPointer, Int) throws -> R) rethrows -> R {
        try body(base, size)
    }
}
