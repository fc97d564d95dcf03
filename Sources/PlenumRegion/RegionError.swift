import PlenumMemory

/// Why a region could not be created, opened or used. Each case says what to do.
public enum RegionError: Error, CustomStringConvertible, Equatable {
    case system(SystemCallError)
    case badMagic(path: String, found: UInt64)
    case unsupportedVersion(path: String, found: UInt32)
    case badLineSize(path: String, found: UInt32)
    case sizeMismatch(path: String, header: UInt64, mapped: Int)
    case headerChecksum(path: String)
    case corruptHeader(path: String, field: String, value: UInt64)
    case tooSmall(requested: Int, minimum: Int)
    case notAligned(requested: Int, alignment: Int)
    case lineSmallerThanHardware(lineSize: Int, hardware: Int)
    case unknownSize(path: String)
    case alreadyExists(path: String)
    case segmentTableFull(capacity: Int)
    case outOfSpace(requested: Int, available: Int)
    case fileSystemFull(path: String, requested: Int, available: Int)
    case segmentNotFound(name: String)
    case corruptSegment(index: Int, reason: String)
    case badSegmentName(String)
    case numaUnavailable
    case numaNodeOutOfRange(requested: Int, maxNode: Int)

    public static func == (a: RegionError, b: RegionError) -> Bool { a.description == b.description }

    public var description: String {
        switch self {
        case .system(let e): return e.description
        case .badMagic(let p, let found):
            return "\(p) is not a Plenum region (magic 0x\(String(found, radix: 16))); create one with `plenum region create`"
        case .unsupportedVersion(let p, let v):
            return "\(p) has region format version \(v); this build reads version \(RegionLayout.version): recreate the region"
        case .badLineSize(let p, let l):
            return "\(p) declares line size \(l); only 64, 128 and 256 are valid: the header is corrupt, recreate the region"
        case .sizeMismatch(let p, let h, let m):
            return "\(p) header says \(h) bytes but \(m) bytes are mapped: the file was truncated or resized; recreate it"
        case .headerChecksum(let p):
            return "\(p) region header checksum mismatch: the header is corrupt; recreate the region"
        case .corruptHeader(let p, let f, let v):
            return "\(p) region header field \(f) = \(v) is out of range: the header is corrupt; recreate the region"
        case .tooSmall(let r, let m):
            return "region size \(r) is below the minimum \(m) bytes (header + segment table): use a larger --size"
        case .notAligned(let r, let a):
            return "region size \(r) must be a multiple of \(a) bytes: round --size up"
        case .lineSmallerThanHardware(let l, let h):
            return "line size \(l) is smaller than this CPU's cache line (\(h)): two writers would share a hardware line; use --line-size \(h) or more"
        case .unknownSize(let p):
            return "cannot tell the size of \(p) (a character device without a sysfs size): pass --size"
        case .alreadyExists(let p):
            return "\(p) already exists: remove it, or open it instead of creating it"
        case .segmentTableFull(let c):
            return "segment table is full (\(c) entries): create a new region"
        case .outOfSpace(let r, let a):
            return "region has \(a) bytes free, \(r) requested: create a larger region (--size)"
        case .fileSystemFull(let p, let r, let a):
            return "\(p) needs \(r) bytes but its file system has \(a) free: free space there (df), ask for less memory, or pass --no-prefault to allocate pages as objects are written"
        case .segmentNotFound(let n):
            return "no segment named \"\(n)\" in the region: list them with `plenum region info`"
        case .corruptSegment(let i, let why):
            return "segment table entry \(i) is corrupt (\(why)); recreate the region"
        case .badSegmentName(let n):
            return "segment name \"\(n)\" must be 1–\(RegionLayout.segmentNameBytes - 1) bytes of UTF-8 without NUL"
        case .numaUnavailable:
            return "libnuma reports NUMA is not available on this machine (kernel without NUMA support): run without --numa-node"
        case .numaNodeOutOfRange(let r, let m):
            return "NUMA node \(r) does not exist: this machine has nodes 0...\(m)"
        }
    }
}
