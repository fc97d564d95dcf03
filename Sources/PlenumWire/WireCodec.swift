import PlenumStore

/// Bounds-checked little-endian writer and reader for client frames
/// (SPEC.md §9.2). Every read checks the remaining length first: a malformed
/// or truncated frame becomes a `WireError`, never an out-of-bounds access.
public struct WireWriter {
    public private(set) var bytes: [UInt8] = []
    public init() {}
    /// With room for `capacity` bytes: one allocation for a message whose
    /// size is about known, instead of one per doubling of the appends.
    public init(reserving capacity: Int) { bytes.reserveCapacity(capacity) }
    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u16(_ v: UInt16) { le(v) }
    public mutating func u32(_ v: UInt32) { le(v) }
    public mutating func u64(_ v: UInt64) { le(v) }
    @inline(__always) mutating func le<T: FixedWidthInteger>(_ v: T) { bytes.appendLittleEndian(v) }
    public mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }
    public mutating func int(_ v: Int) { u64(UInt64(bitPattern: Int64(v))) }
    public mutating func id(_ v: ObjectID) { v.append(to: &bytes) }
    public mutating func ids(_ v: [ObjectID]) {
        bytes.reserveCapacity(bytes.count + 4 + v.count * ObjectID.byteCount)
        u32(UInt32(v.count)); for i in v { id(i) }
    }
    /// Appends `count` bytes that `body` writes in place (zero-filled
    /// first): one growth for a whole list instead of one append per field.
    public mutating func raw(_ count: Int, _ body: (UnsafeMutableRawBufferPointer) -> Void) {
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: count))
        bytes.withUnsafeMutableBytes { body(UnsafeMutableRawBufferPointer(rebasing: $0[start..<(start + count)])) }
    }

    /// A frame's header (SPEC §9.2), its length 0 until `patchLength`.
    mutating func header(_ kind: UInt16, requestId: UInt64) { bytes.appendFrameHeader(kind, requestId: requestId) }

    /// Stores the frame's length (every byte written so far) in its first
    /// four bytes, in place: no copy of the frame.
    mutating func patchLength() {
        bytes.storeLittleEndian(UInt32(truncatingIfNeeded: bytes.count), at: 0)
    }

    /// Room for `n` more bytes (a frame whose size is known up front).
    public mutating func reserve(_ n: Int) { bytes.reserveCapacity(bytes.count + n) }
    public mutating func bytes(_ b: [UInt8]) { bytes += b }
    public mutating func text(_ s: String) { let u = Array(s.utf8.prefix(4096)); u32(UInt32(u.count)); bytes += u }
}

public struct WireReader {
    let bytes: [UInt8]
    public private(set) var position: Int
    let end: Int

    public init(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil) {
        self.bytes = bytes
        self.position = start
        self.end = end ?? bytes.count
    }

    public var remaining: Int { end - position }

    mutating func take(_ n: Int) throws(WireError) -> ArraySlice<UInt8> {
        guard n >= 0, n <= remaining else { throw .truncated(needed: n, available: remaining) }
        defer { position += n }
        return bytes[position..<(position + n)]
    }

    mutating func fixed<T: FixedWidthInteger>(_: T.Type) throws(WireError) -> T {
        let n = MemoryLayout<T>.size
        guard n <= remaining else { throw .truncated(needed: n, available: remaining) }
        let at = position
        position += n
        return T(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: T.self) })
    }

    public mutating func u8() throws(WireError) -> UInt8 { try fixed(UInt8.self) }
    public mutating func u16() throws(WireError) -> UInt16 { try fixed(UInt16.self) }
    public mutating func u32() throws(WireError) -> UInt32 { try fixed(UInt32.self) }
    public mutating func u64() throws(WireError) -> UInt64 { try fixed(UInt64.self) }
    public mutating func i64() throws(WireError) -> Int64 { Int64(bitPattern: try u64()) }

    /// A size or offset: must fit in an Int and be ≥ 0.
    public mutating func size() throws(WireError) -> Int {
        let v = try u64()
        guard v <= UInt64(Int.max) else { throw .badValue("size \(v) does not fit") }
        return Int(v)
    }

    /// A signed quantity sent by `WireWriter.int` (may be negative).
    public mutating func int() throws(WireError) -> Int { Int(try i64()) }

    public mutating func id() throws(WireError) -> ObjectID {
        guard ObjectID.byteCount <= remaining else { throw .truncated(needed: ObjectID.byteCount, available: remaining) }
        let at = position
        position += ObjectID.byteCount
        return bytes.withUnsafeBytes { ObjectID(raw: UnsafeRawBufferPointer(rebasing: $0[at..<(at + ObjectID.byteCount)])) }
    }

    public mutating func ids(limit: Int) throws(WireError) -> [ObjectID] {
        let n = Int(try u32())
        guard n <= limit else { throw .badValue("\(n) ids, at most \(limit)") }
        guard n * ObjectID.byteCount <= remaining else { throw .truncated(needed: n * ObjectID.byteCount, available: remaining) }
        var out: [ObjectID] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(try id()) }
        return out
    }

    /// u32 length + bytes, bounded by the frame.
    public mutating func blob() throws(WireError) -> [UInt8] {
        let n = Int(try u32())
        return Array(try take(n))
    }

    public mutating func text() throws(WireError) -> String {
        let n = Int(try u32())
        guard n <= 4096 else { throw .badValue("text of \(n) bytes") }
        return String(decoding: try take(n), as: UTF8.self)
    }
}

/// Why a frame could not be decoded. The daemon answers with a protocol
/// error; a frame whose length cannot be trusted also closes the connection.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(needed: Int, available: Int)
    case badLength(Int)
    case unknownType(UInt16)
    case badValue(String)
    case trailingBytes(Int)

    public var description: String {
        switch self {
        case .truncated(let n, let a): return "malformed frame: needs \(n) more bytes, has \(a)"
        case .badLength(let l): return "frame length \(l) outside \(Frame.headerBytes)...\(Frame.maxBytes): the connection cannot be resynchronised"
        case .unknownType(let t): return "unknown message type 0x\(String(t, radix: 16))"
        case .badValue(let why): return "malformed frame: \(why)"
        case .trailingBytes(let n): return "malformed frame: \(n) unexpected bytes after the body"
        }
    }
}
