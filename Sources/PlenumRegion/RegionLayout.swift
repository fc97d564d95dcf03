import PlenumMemory

/// Byte layout of the region header and segment table (SPEC.md §4).
///
/// Only layout constants and offset functions: no state. The owner (the node
/// that created the region, or the pool's formatter) is the only writer of
/// every line here.
///
/// ```
///  offset 0                        L                      2L
///  +-------------------------------+-----------------------+--------------- ...
///  | line 0: identity (immutable)  | line 1: segment commit| segment entries
///  +-------------------------------+-----------------------+--------------- ...
///
///  line 0                                   line 1
///   0 ┌──────── magic u64 ──────────┐        0 ┌── segmentCount u64 (commit) ─┐
///   8 │ version u32 │ lineSize u32  │        8 │   dataCursor u64             │
///  16 │──────── regionSize u64 ─────│          └──────────────────────────────┘
///  24 │ ownerNode u32│ segCap u32   │
///  32 │──── segmentTableOffset u64 ─│      segment entry i (64 bytes) at
///  40 │──────── dataOffset u64 ─────│      segmentTableOffset + 64*i
///  48 │──────── createdNanos u64 ───│       0 kind u32 | producer u32
///  56 │ headerCRC u32│ reserved u32 │       8 consumer u32 | flags u32
///     └─────────────────────────────┘      16 offset u64
///                                          24 length u64
///  data area: [dataOffset, regionSize)     32 name [24] (UTF-8, NUL padded)
///  (4096-aligned)                          56 reserved u32 | entryCRC u32
/// ```
public enum RegionLayout {
    /// "PLNMRGN1" read as a little-endian u64.
    public static let magic: UInt64 = 0x314E_4752_4D4E_4C50
    public static let version: UInt32 = 1
    /// Node id of a CXL-pool region: owned by no node.
    public static let poolOwner: UInt32 = 0xFFFF_FFFF
    public static let segmentCapacity = 32
    public static let segmentEntryBytes = 64
    public static let segmentNameBytes = 24
    public static let dataAlignment = 4096

    // line 0
    public static let magicOffset = 0
    public static let versionOffset = 8
    public static let lineSizeOffset = 12
    public static let regionSizeOffset = 16
    public static let ownerOffset = 24
    public static let segmentCapacityOffset = 28
    public static let segmentTableOffsetOffset = 32
    public static let dataOffsetOffset = 40
    public static let createdOffset = 48
    public static let headerCRCOffset = 56
    /// CRC32C covers bytes [0, 56) of line 0.
    public static let headerCRCCovered = 56
    public static let identityBytes = 64

    /// Line 1: the segment commit line.
    public static func segmentCountOffset(line: Int) -> Int { line }
    public static func dataCursorOffset(line: Int) -> Int { line + 8 }

    public static func segmentTableOffset(line: Int) -> Int { 2 * line }
    public static func segmentEntryOffset(line: Int, index: Int) -> Int {
        segmentTableOffset(line: line) + index * segmentEntryBytes
    }
    /// First byte of the data area: after the table, rounded to 4096.
    public static func dataOffset(line: Int) -> Int {
        let end = segmentTableOffset(line: line) + segmentCapacity * segmentEntryBytes
        return (end + dataAlignment - 1) / dataAlignment * dataAlignment
    }
    /// Smallest region that can hold a header, table and one page of data.
    public static func minimumSize(line: Int) -> Int { dataOffset(line: line) + dataAlignment }

    // segment entry fields
    public static let entryKind = 0
    public static let entryProducer = 4
    public static let entryConsumer = 8
    public static let entryFlags = 12
    public static let entryOffset = 16
    public static let entryLength = 24
    public static let entryName = 32
    public static let entryCRC = 60
}
