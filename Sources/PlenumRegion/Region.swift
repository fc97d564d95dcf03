#if canImport(Glibc)
import Glibc
#endif
import PlenumMemory

/// A shared-memory region mapped into this process (SPEC.md §4).
///
/// Backed by a file in /dev/shm or on hugetlbfs, a DAX character device
/// (/dev/daxX.Y), or a PCI BAR resource file (QEMU ivshmem's
/// /sys/bus/pci/devices/…/resource2). Everything is addressed by offset
/// through ``memory(flushes:)``; no raw pointer leaves ``Mapping``.
public final class Region: Sendable {
    public let path: String
    public let header: RegionHeader
    public let mapping: Mapping

    public var lineSize: LineSize { header.lineSize }
    public var size: Int { header.regionSize }

    private init(path: String, header: RegionHeader, mapping: Mapping) {
        self.path = path
        self.header = header
        self.mapping = mapping
    }

    /// The seam over this region. `flushes: false` is the benchmark-only
    /// `--no-flush` mode.
    public func memory(flushes: Bool = true) -> MappedMemory {
        mapping.memory(lineSize: header.lineSize, flushes: flushes)
    }

    /// Creates a region and writes its header.
    ///
    /// A path that does not exist is created (mode 0600) and sized with
    /// `ftruncate`. A character device (DAX) or an existing file with
    /// `overwrite` is formatted in place; an existing file otherwise is
    /// refused so a live region is never clobbered by accident.
    ///
    /// With `requireBacking` (a caller about to populate every page) a file
    /// whose file system cannot hold all `size` bytes is refused before it is
    /// sized: populating it would fill the file system (on tmpfs, memory)
    /// before failing.
    public static func create(
        at path: String, size: Int, lineSize: LineSize = .default, owner: UInt32 = 0,
        numaNode: Int? = nil, overwrite: Bool = false, requireBacking: Bool = false
    ) throws(RegionError) -> Region {
        try checkLineSize(lineSize)
        if let numaNode { try Numa.validate(numaNode) }
        let minimum = RegionLayout.minimumSize(line: lineSize.bytes)
        guard size >= minimum else { throw .tooSmall(requested: size, minimum: minimum) }
        guard size % RegionLayout.dataAlignment == 0 else {
            throw .notAligned(requested: size, alignment: RegionLayout.dataAlignment)
        }
        var st = stat()
        let exists = stat(path, &st) == 0
        let isDevice = exists && (st.st_mode & S_IFMT) == S_IFCHR
        if exists && !isDevice && !overwrite { throw .alreadyExists(path: path) }
        let flags = isDevice ? O_RDWR : (O_RDWR | O_CREAT | (overwrite ? 0 : O_EXCL))
        let fd = Glibc.open(path, flags | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST { throw .alreadyExists(path: path) }
            throw .system(.last("open", subject: path, hint: "check the directory exists and is writable"))
        }
        defer { close(fd) }
        if isDevice {
            let deviceSize = try deviceSize(path: path, st: st)
            guard size <= deviceSize else { throw .outOfSpace(requested: size, available: deviceSize) }
        } else if requireBacking, let available = backingAvailable(fd: fd), size > available {
            if !exists { unlink(path) }
            throw .fileSystemFull(path: path, requested: size, available: available)
        } else if ftruncate(fd, off_t(size)) != 0 {
            let e = SystemCallError.last("ftruncate", subject: path,
                                         hint: "on hugetlbfs the size must be a multiple of the huge page size")
            if !exists { unlink(path) }
            throw .system(e)
        }
        let mapping: Mapping
        do throws(SystemCallError) { mapping = try Mapping(fd: fd, size: size, subject: path) } catch {
            if !exists { unlink(path) }
            throw .system(error)
        }
        if let numaNode { try Numa.bind(mapping, to: numaNode) }
        let memory = mapping.memory(lineSize: lineSize)
        // A reused file or device may hold an old header/table: zero the
        // header area before publishing the new identity line.
        memory.write(at: 0, count: RegionLayout.dataOffset(line: lineSize.bytes)) {
            _ = $0.initializeMemory(as: UInt8.self, repeating: 0)
        }
        memory.fence(.store)
        memory.flush(at: 0, count: RegionLayout.dataOffset(line: lineSize.bytes))
        memory.fence(.store)
        let header = RegionHeader(lineSize: lineSize, regionSize: size, ownerNode: owner, createdNanos: wallNanos())
        header.write(to: memory)
        return Region(path: path, header: header, mapping: mapping)
    }

    /// Bytes the file open at `fd` can hold without its file system running
    /// out: the free space plus what the file already has allocated. `nil`
    /// when the file system does not say.
    static func backingAvailable(fd: Int32) -> Int? {
        var vfs = statvfs(), st = stat()
        guard fstatvfs(fd, &vfs) == 0, fstat(fd, &st) == 0, vfs.f_frsize > 0 else { return nil }
        let (free, overflow) = UInt64(vfs.f_bavail).multipliedReportingOverflow(by: UInt64(vfs.f_frsize))
        let (total, over2) = Int(clamping: free).addingReportingOverflow(Int(st.st_blocks) * 512)
        return overflow || over2 ? Int.max : total
    }

    /// Maps an existing region and validates its header. `size` is required
    /// only for character devices whose size sysfs does not report.
    public static func open(at path: String, size: Int? = nil, numaNode: Int? = nil) throws(RegionError) -> Region {
        let fd = Glibc.open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            throw .system(.last("open", subject: path, hint: "create the region first (`plenum region create`) or check permissions"))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .system(.last("fstat", subject: path)) }
        let mapped: Int
        if (st.st_mode & S_IFMT) == S_IFCHR {
            if let size { mapped = size } else { mapped = try deviceSize(path: path, st: st) }
        } else {
            mapped = size ?? Int(st.st_size)
        }
        guard mapped >= RegionLayout.identityBytes else { throw .badMagic(path: path, found: 0) }
        let mapping: Mapping
        do throws(SystemCallError) { mapping = try Mapping(fd: fd, size: mapped, subject: path) } catch { throw .system(error) }
        let header = try RegionHeader.read(from: mapping.memory(lineSize: .default), mappedSize: mapped, path: path)
        try checkLineSize(header.lineSize)
        if let numaNode { try Numa.bind(mapping, to: numaNode) }
        return Region(path: path, header: header, mapping: mapping)
    }

    /// Logical lines must not be smaller than the CPU's cache line, or two
    /// writers could share one hardware line (brief invariant 1).
    static func checkLineSize(_ lineSize: LineSize) throws(RegionError) {
        let hw = CPU.hardwareLineSize
        guard lineSize.bytes >= hw else { throw .lineSmallerThanHardware(lineSize: lineSize.bytes, hardware: hw) }
    }

    /// Size of a DAX character device from sysfs (/sys/dev/char/M:m/size).
    static func deviceSize(path: String, st: stat) throws(RegionError) -> Int {
        let major = (st.st_rdev >> 8) & 0xfff, minor = (st.st_rdev & 0xff) | ((st.st_rdev >> 12) & 0xfff00)
        let sysfs = "/sys/dev/char/\(major):\(minor)/size"
        guard let f = fopen(sysfs, "r") else { throw .unknownSize(path: path) }
        defer { fclose(f) }
        var value: UInt64 = 0
        guard withUnsafeMutablePointer(to: &value, { fscanf_u64(f, $0) }), value > 0 else { throw .unknownSize(path: path) }
        return Int(value)
    }

    static func wallNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// Reads one decimal integer from a stdio stream.
private func fscanf_u64(_ f: UnsafeMutablePointer<FILE>, _ out: UnsafeMutablePointer<UInt64>) -> Bool {
    var buffer = [CChar](repeating: 0, count: 64)
    guard fgets(&buffer, Int32(buffer.count), f) != nil else { return false }
    let bytes = buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }
    let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: " \n\t")
    guard let v = UInt64(text) else { return false }
    out.pointee = v
    return true
}

private extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        return String(s)
    }
}
