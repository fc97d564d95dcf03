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
///    mapping or i changed since last time ─▶ find "directory-index" in h's
///        segment table, check its header (magic, version, line, crc,
///        geometry inside the segment) and that it names life i
///    no index there (a peer without one, a new life not mapped yet) ▶ nil
///    else the seqlock read of id's bucket ─────────────────▶ its answer or nil
/// ```
final class PeerIndexes: DirectoryPeeker, @unchecked Sendable {
    static let segmentName = "directory-index"

    private unowned let links: PeerLinks
    private var found: [NodeID: (region: ObjectIdentifier, incarnation: UInt64, layout: DirectoryIndexLayout?)] = [:]

    init(links: PeerLinks) { self.links = links }

    func peek(_ id: ObjectID, at home: NodeID, incarnation: UInt64) -> IndexAnswer? {
        guard let r = links.peerRegions[home] else { return nil }
        let key = ObjectIdentifier(r)
        let m = r.memory()
        if let f = found[home], f.region == key, f.incarnation == incarnation {
            return f.layout?.peek(id, in: m)
        }
        var layout: DirectoryIndexLayout?
        if let seg = try? SegmentTable.find(Self.segmentName, in: m, header: r.header),
           let (l, life) = DirectoryIndexLayout.read(at: seg.offset, length: seg.length, in: m), life == incarnation {
            layout = l
            r.mapping.prefaultForReading(offset: l.base, count: l.totalBytes)
        }
        found[home] = (key, incarnation, layout)
        return layout?.peek(id, in: m)
    }
}
