import CPlenumShim

/// CRC32C (Castagnoli) — the checksum of ring slots and headers (SPEC §5.1).
/// Hardware instruction on x86_64 (SSE4.2) and aarch64 (+crc), tables on
/// ppc64le; the result is identical on all three.
public enum CRC32C {
    @inlinable public static func checksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return seed }
        return plenum_crc32c(seed, base, bytes.count)
    }
}
