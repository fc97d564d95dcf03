/// Little-endian integers written into byte arrays without a raw buffer,
/// for every encoder (Plenum's wire, Plasma's FlatBuffers, object ids).
/// A raw buffer (`withUnsafeBytes(of:)`) appended with `+=` goes through
/// the generic sequence path at about ten instructions a byte, and an
/// `append(contentsOf:)` of a typed buffer costs a call and a `memcpy` for
/// four or eight bytes (callgrind: together the largest cost of a 1,000-id
/// Plasma get reply); `append` of single bytes is inlined.
extension Array where Element == UInt8 {
    @inlinable @inline(__always)
    public mutating func appendLittleEndian<T: FixedWidthInteger>(_ v: T) {
        var x = v
        for _ in 0..<MemoryLayout<T>.size { append(UInt8(truncatingIfNeeded: x)); x >>= 8 }
    }

    /// `v` little-endian at `at` (the bytes exist already).
    @inlinable @inline(__always)
    public mutating func storeLittleEndian<T: FixedWidthInteger>(_ v: T, at: Int) {
        precondition(at >= 0 && at <= count - MemoryLayout<T>.size, "store of \(MemoryLayout<T>.size) bytes at \(at) outside [0, \(count))")
        withUnsafeMutableBytes { $0.storeBytes(of: v.littleEndian, toByteOffset: at, as: T.self) }
    }
}
