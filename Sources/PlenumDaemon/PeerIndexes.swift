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
final class PeerIndexes: DirectoryPeeker, @unchecked Sendable {
    static let segmentName = DirectoryIndexLayout.segmentName

    private unowned let links: PeerLinks
    /// Per home (node ids are 0…63): what was found for which incarnation.
    private struct Found {
        var incarnation: UInt64
        /// The index and the home's memory, held only while `PeerLinks`
        /// maps that file (`forget` runs at each change of its regions).
        var index: (layout: DirectoryIndexLayout, memory: MappedMemory)?
        var misses = 0
    }
    private var found = [Found?](repeating: nil, count: 64)

    init(links: PeerLinks) {
        self.links = links
        links.regionsChanged = { [weak self] in self?.forget() }
    }

    private func forget() {
        for h in found.indices where found[h] != nil { found[h] = nil }
    }

    func peek(_ id: ObjectID, at home: NodeID, incarnation: UInt64) -> IndexAnswer? {
        guard home < 64 else { return nil }
        if let f = found[Int(home)], f.incarnation == incarnation {
            if let (layout, memory) = f.index { return layout.peek(id, in: memory) }
            // No index found for this life: look again now and then (a peer
            // without one costs a segment-table read per 1,024 lookups).
            found[Int(home)]!.misses += 1
            if (f.misses + 1) % 1024 != 0 { return nil }
        }
        var index: (layout: DirectoryIndexLayout, memory: MappedMemory)?
        if let r = links.peerRegions[home] {
            let m = r.memory()
            if let seg = try? SegmentTable.find(Self.segmentName, in: m, header: r.header),
               let (l, life) = DirectoryIndexLayout.read(at: seg.offset, length: seg.length, in: m), life == incarnation {
                index = (l, m)
                r.mapping.prefaultForReading(offset: l.base, count: l.totalBytes)
            }
        }
        found[Int(home)] = Found(incarnation: incarnation, index: index)
        guard let (layout, memory) = index else { return nil }
        return layout.peek(id, in: memory)
    }
}
