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
///    mapping (PeerLinks' generation) or i changed ─▶ find "directory-index" in h's
///        segment table, check its header (magic, version, line, crc,
///        geometry inside the segment) and that it names life i
///    no index there (a peer without one, a new life not mapped yet) ▶ nil
///    else the seqlock read of id's bucket ─────────────────▶ its answer or nil
/// ```
final class PeerIndexes: DirectoryPeeker, @unchecked Sendable {
    static let segmentName = "directory-index"

    private unowned let links: PeerLinks
    /// Per home (node ids are 0…63): what was found for which mapping
    /// generation and incarnation.
    private struct Found {
        var generation: Int
        var incarnation: UInt64
        /// Weak: a replaced peer file is unmapped when `PeerLinks` lets it go.
        weak var region: Region?
        var layout: DirectoryIndexLayout?
        var misses = 0
    }
    private var found = [Found?](repeating: nil, count: 64)

    init(links: PeerLinks) { self.links = links }

    func peek(_ id: ObjectID, at home: NodeID, incarnation: UInt64) -> IndexAnswer? {
        guard home < 64 else { return nil }
        let generation = links.regionsChanged
        if var f = found[Int(home)], f.generation == generation, f.incarnation == incarnation {
            if let layout = f.layout, let r = f.region { return layout.peek(id, in: r.memory()) }
            // No index found for this life: look again now and then (a peer
            // without one costs a segment-table read per 1,024 lookups).
            f.misses += 1
            found[Int(home)] = f
            if f.misses % 1024 != 0 { return nil }
        }
        let r = links.peerRegions[home]
        var layout: DirectoryIndexLayout?
        if let r {
            let m = r.memory()
            if let seg = try? SegmentTable.find(Self.segmentName, in: m, header: r.header),
               let (l, life) = DirectoryIndexLayout.read(at: seg.offset, length: seg.length, in: m), life == incarnation {
                layout = l
                r.mapping.prefaultForReading(offset: l.base, count: l.totalBytes)
            }
        }
        found[Int(home)] = Found(generation: generation, incarnation: incarnation, region: r, layout: layout)
        guard let layout, let r else { return nil }
        return layout.peek(id, in: r.memory())
    }
}
