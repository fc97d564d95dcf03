import PlenumCluster
import PlenumMemory
import PlenumRing

/// One peer link in shared memory (SPEC §10.3): block `index` of the
/// host region's `peer-links` segment carries ring p→c and two control
/// lines, each with one writer.
///
/// ```
///  base ┌──────────────────────────┐ heartbeat line — writer p (the producer)
///       │ beat u64 @0 (commit)     │   incarnation @8, capacity @16, used @24,
///       │ …                        │   objects @32, largestFree @40, flags @48,
///  +L   ├──────────────────────────┤   crc32c([0,56)) u32 @56
///       │ sleeping u64 @0          │ doorbell line — writer c (the consumer)
///  +2L  ├──────────────────────────┤
///       │ ring p→c (§5)            │ 3L + slots·slotSize
///       └──────────────────────────┘
/// ```
struct LinkBlock {
    let base: Int
    let line: Int
    let ring: RingLayout

    static func bytes(line: Int, slots: Int, slotSize: Int) -> Int { RegionPlan.blockBytes(line: line, slots: slots, slotSize: slotSize) }

    init(base: Int, line: Int, slots: Int, slotSize: Int) throws {
        self.base = base
        self.line = line
        ring = try RingLayout(base: base + 2 * line, lineSize: line, slotCount: slots, slotSize: slotSize)
    }

    var heartbeat: Int { base }
    var doorbell: Int { base + line }
}
