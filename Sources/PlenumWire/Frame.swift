import PlenumStore

/// Client ↔ store framing (SPEC.md §9.2).
///
/// ```
///   0 ┌ length u32 (whole frame, 16 … 1 MiB) ┬ type u16 ┬ flags u16 ┐
///   8 │ requestId u64 (echoed in the reply; 0 for notifications)   │
///  16 │ body …                                                     │
///     └────────────────────────────────────────────────────────────┘
/// ```
public enum Frame {
    public static let headerBytes = 16
    public static let maxBytes = 1 << 20
    public static let maxIds = 4096

    public enum Kind: UInt16, Sendable {
        // requests
        case create = 0x01, seal, abort, get, release, contains, delete, list, evict, subscribe, stats, refresh, createAndSeal
        case openRings, wake
        // cluster requests (SPEC §10.6, §10.7, §10.9)
        case createOn = 0x10, barrier, regions, clusterStatus
        // access and integrity (SPEC §9.7)
        case writeAccess = 0x14, verify
        // a release nobody answers (SPEC §9.2)
        case releaseQuietly = 0x16
        // where a traced operation's time goes (SPEC §9.2, §10.9)
        case hopTrace = 0x17
        // what the store counts, in Prometheus's text format (SPEC §9.2, §10.9 "Metrics")
        case metrics = 0x18
        // replies
        case created = 0x81, sealed, aborted, objects, released, containsReply, deleted, listReply, evicted, subscribed, statsReply
        case refreshed, createdAndSealed, ringsOpened
        case barrierPassed = 0x91, regionsReply, clusterStatusReply, writeGranted, verified
        case hopTraceReply = 0x97
        case metricsReply = 0x98
        case error = 0xFF
        // notifications and the greeting
        case notifySealed = 0xC1, notifyDeleted = 0xC2
        case hello = 0xE0
    }

    /// Builds one frame around `body`.
    public static func build(_ kind: Kind, requestId: UInt64, _ body: (inout WireWriter) -> Void = { _ in }) -> [UInt8] {
        var w = WireWriter(reserving: 64)   // header + every small body
        w.header(kind.rawValue, requestId: requestId)
        body(&w)
        // Oversized frames are refused by the sender (see the daemon); never trap here.
        w.patchLength()
        return w.bytes
    }

    /// A frame with no body or a one-byte body (the hot small replies:
    /// containsReply, sealed, released, …): the bytes of `build` with the
    /// same fields, for a fraction of its instructions.
    public static func small(_ kind: Kind, requestId: UInt64, byte: UInt8? = nil) -> [UInt8] {
        let n = headerBytes + (byte == nil ? 0 : 1)
        // Reserved then appended: `[UInt8](unsafeUninitializedCapacity:)`
        // and `[UInt8](repeating:count:)` look the array's storage type up
        // at run time (about 300 instructions more, callgrind).
        var b: [UInt8] = []
        b.reserveCapacity(n)
        b.appendFrameHeader(kind.rawValue, requestId: requestId, length: UInt32(n))
        if let byte { b.append(byte) }
        return b
    }

    /// The length of a `small` frame.
    @inlinable public static func smallLength(byte: UInt8?) -> Int { headerBytes + (byte == nil ? 0 : 1) }

    /// The bytes of `small` written in place (`b`: exactly
    /// `smallLength(byte:)` bytes), e.g. straight into a ring slot.
    public static func writeSmall(_ kind: Kind, requestId: UInt64, byte: UInt8?, into b: UnsafeMutableRawBufferPointer) {
        precondition(b.count == smallLength(byte: byte))
        writeHeader(kind, requestId: requestId, into: b)
        if let byte { b[headerBytes] = byte }
    }

    /// The length of a frame whose body is one id (`Wire.oneID`).
    public static let oneIDLength = headerBytes + ObjectID.byteCount

    /// A frame whose body is one id written in place (`b`: exactly
    /// `oneIDLength` bytes): the bytes of `Wire.encode` for that request.
    public static func writeOneID(_ kind: Kind, requestId: UInt64, id: ObjectID, into b: UnsafeMutableRawBufferPointer) {
        precondition(b.count == oneIDLength)
        writeHeader(kind, requestId: requestId, into: b)
        let (w0, w1, w2) = id.words
        b.storeBytes(of: w0.littleEndian, toByteOffset: headerBytes, as: UInt64.self)
        b.storeBytes(of: w1.littleEndian, toByteOffset: headerBytes + 8, as: UInt64.self)
        b.storeBytes(of: w2.littleEndian, toByteOffset: headerBytes + 16, as: UInt32.self)
    }

    /// The header of a frame of `b.count` bytes, in place (SPEC §9.2).
    private static func writeHeader(_ kind: Kind, requestId: UInt64, into b: UnsafeMutableRawBufferPointer) {
        b.storeBytes(of: UInt32(b.count).littleEndian, toByteOffset: 0, as: UInt32.self)
        b.storeBytes(of: kind.rawValue.littleEndian, toByteOffset: 4, as: UInt16.self)
        b.storeBytes(of: UInt16(0), toByteOffset: 6, as: UInt16.self)
        b.storeBytes(of: requestId.littleEndian, toByteOffset: 8, as: UInt64.self)
    }

    /// If `buffer[start...]` holds a whole frame, its length; nil if more
    /// bytes are needed. Throws when the length field itself is impossible.
    public static func complete(_ buffer: [UInt8], from start: Int = 0) throws(WireError) -> Int? {
        guard buffer.count - start >= 4 else { return nil }
        var r = WireReader(buffer, from: start)
        let length = Int(try r.u32())
        guard length >= headerBytes, length <= maxBytes else { throw .badLength(length) }
        return buffer.count - start >= length ? length : nil
    }

    /// Splits a complete frame into (type, requestId, body reader).
    public static func open(_ frame: [UInt8]) throws(WireError) -> (kind: UInt16, requestId: UInt64, body: WireReader) {
        var r = WireReader(frame)
        let length = Int(try r.u32())
        guard length == frame.count else { throw .badLength(length) }
        let kind = try r.u16()
        _ = try r.u16()
        let rid = try r.u64()
        return (kind, rid, r)
    }
}

/// Stable numbers for `StoreError` and protocol errors on the wire.
public enum ErrorCode: UInt16, Sendable {
    case alreadyExists = 1, notFound, notSealed, alreadySealed, inUse, notCreator, noReference, invalidSize
    case tooLarge, outOfMemory, unknownClient, tooManyIds, nodeUnavailable, digestMismatch, readOnly
    case malformedFrame = 100, unknownType, frameTooLarge
}

extension Array where Element == UInt8 {
    /// A frame's header (SPEC §9.2), appended field by field (a zero-filled
    /// append costs more than the 16 bytes, callgrind); a length of 0 is
    /// patched once the body is written (`WireWriter.patchLength`).
    @inline(__always)
    mutating func appendFrameHeader(_ kind: UInt16, requestId: UInt64, length: UInt32 = 0) {
        appendLittleEndian(length)
        appendLittleEndian(kind)
        appendLittleEndian(UInt16(0))
        appendLittleEndian(requestId)
    }
}
