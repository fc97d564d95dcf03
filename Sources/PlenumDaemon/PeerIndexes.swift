import PlenumCluster
import PlenumMemory
import PlenumRegion
import PlenumStore

/// Reads peers' directory indexes (SPEC §10.4 "Directory index") in the
/// regions `PeerLinks` maps, for the core's lookups. Used from the loop's
/// thread only (hence `@unchecked Sendable`).
///
/// ```
///  peek(id, home h, incarnation i)
///    h's region not mapped here ─────────────────────────────▶ nil (ask h)
///    nothing found yet for h, or i changed ─▶ find "directory-index" in h's
///        segment table, check its header (magic, version, line, crc,
///        geometry inside the segment) and that it names life i
///    no index there (a peer without one, a new life not mapped yet) ▶ nil
///    else the seqlock read of id's bucket ─────────────────▶ its answer or nil
///
///  PeerLinks changes its regions ─▶ everything found is forgotten (the
///    mappings it holds are let go: a replaced file is unmapped at once)
/// ```
/// (`FoundIndexes` keeps what was found, and looks again every 1,024
/// lookups of a life without an index.)
final class PeerIndexes: DirectoryPeeker, @unchecked Sendable {
    static let segmentName = DirectoryIndexLayout.segmentName

    private unowned let links: PeerLinks
    /// What was found per home and life; it holds the home's memory only
    /// while `PeerLinks` maps that file (forgotten at each change of its regions).
    private let found = FoundIndexes()

    init(links: PeerLinks) {
        self.links = links
        links.regionsChanged = { [weak self] in self?.found.forget() }
    }

    func peek(_ id: ObjectID, at home: NodeID, incarnation: UInt64) -> IndexAnswer? {
        let index = found.index(of: home, life: incarnation) {
            guard let r = links.peerRegions[home] else { return nil }
            let m = r.memory()
            guard let seg = try? SegmentTable.find(Self.segmentName, in: m, header: r.header) else { return nil }
            return DirectoryIndexLayout.found(at: seg.offset, length: seg.length, in: m, mapping: r.mapping, life: incarnation)
        }
        guard let (layout, memory) = index else { return nil }
        return layout.peek(id, in: memory)
    }
}
