/// What a node's region holds, from the cluster file alone (SPEC §10.3
/// "Region size"): the store builds exactly this, and `plenum cluster
/// check` prints it.
///
/// ```
///  0      4096            4096+M              4096+M+P             4096+M+P+X      +V
///  ┌──────┬───────────────┬───────────────────┬────────────────────┬───────────────┐
///  │header│ objects (M)   │ peer-links (P)    │ directory-index (X)│ cluster-view  │
///  └──────┴───────────────┴───────────────────┴────────────────────┴───────────────┘
///   M = roundUp(memory, 4096)   P = max(4096, roundUp(k·B, 4096)), B = 5L + C·S
///   X = roundUp(L·(1 + buckets), 4096), 0 without an index
///   V = 4096 with an index (SPEC §10.4 "Client peeks"), else 0
/// ```
public struct RegionPlan: Equatable, Sendable {
    public static let headerBytes = 4096
    public var objects: Int
    public var links: Int
    public var rings: Int
    public var index: Int
    /// The `cluster-view` segment: with an index only.
    public var view: Int
    public var indexLayout: DirectoryIndexLayout?
    public var total: Int { Self.headerBytes + objects + links + index + view }

    /// The bytes of one link block (SPEC §10.3): heartbeat, doorbell, ring descriptor, producer and consumer lines, slots.
    public static func blockBytes(line: Int, slots: Int, slotSize: Int) -> Int { 5 * line + slots * slotSize }

    public init(config: ClusterConfig, plan: RingPlan, node: NodeID) {
        let line = config.lineSize
        objects = ((config.node(node)?.memory ?? 0) + 4095) / 4096 * 4096
        rings = plan.rings(in: node)
        links = max(4096, (rings * Self.blockBytes(line: line, slots: config.ringSlots, slotSize: config.ringSlotSize) + 4095) / 4096 * 4096)
        if config.transport == .rings, config.directoryIndex > 0,
           let l = DirectoryIndexLayout(base: 0, lineSize: line, entries: config.directoryIndex) {
            indexLayout = l
            index = (l.totalBytes + 4095) / 4096 * 4096
            view = ClusterViewLayout.segmentBytes
        } else {
            index = 0
            view = 0
        }
    }
}
