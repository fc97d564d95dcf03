import CPlenumShim

/// CRC32C (Castagnoli) — the checksum of ring slots and headers (SPEC §5.1).
/// Hardware instruction on x86_64 (SSE4.2) and aarch64 (+crc), tables on
/// ppc64le; the result is identical on all three.
public enum CRC32C {
    @inlinable public static func checksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return seed }
        return plenum_crc32c(seed, base, bytes.count)
    }

    /// The checksum of `bytes` without `gap` (a checksum field inside the
    /// bytes it covers): that of `bytes[..<gap.lowerBound]` followed by
    /// `bytes[gap.upperBound...]`, in one call.
    @inlinable public static func checksum(_ bytes: UnsafeRawBufferPointer, skipping gap: Range<Int>) -> UInt32 {
        precondition(gap.lowerBound >= 0 && gap.upperBound <= bytes.count, "gap inside the bytes")
        guard let base = bytes.baseAddress else { return 0 }
        return plenum_crc32c_gap(base, bytes.count, gap.lowerBound, gap.count)
    }
}
