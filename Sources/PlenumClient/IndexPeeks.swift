import PlenumCluster
import PlenumMemory
import PlenumRegion
import PlenumStore

/// A client's own reads of directory indexes (SPEC §10.4 "Client peeks"):
/// a `contains` answered from the id's home's index, as its store would
/// answer it, with no message to the store at all.
///
/// ```
///  contains(id)
///    a request of this client not answered yet (but lookups),
///    or a quiet release no reply to a later request has passed ─────▶ ask the store
///    view: seq (acquiring) = the copy's? keep it : seqlock copy (odd, torn ▶ ask)
///    h ← Home.of(id, view.live); h not mapped by the store ──────────▶ ask
///    h's index for (life, handle) found? ── no: look (a regions fetch
///        for an unknown handle), again every 1,024 lookups ──────────▶ ask
///    seqlock read of id's bucket (§10.4 reader) ─ nil ───────────────▶ ask
///    the view's seq moved meanwhile ─────────────────────────────────▶ ask
///    h = me: sealed → true · absent, reserved → false (the store's own table)
///    h ≠ me: sealed at another node → true · anything else ──────────▶ ask
///        (the store answers from its own memory first: an object sealed
///        here whose publication — after a view change, a re-publication —
///        has not reached h yet reads absent or reserved in h's index; and an
///        entry of this node may be one its one-way update has not reached)
/// ```
final class IndexPeeks {
    let view: ClusterViewLayout
    /// The copied view and the sequence word it was copied at (0: none).
    private(set) var copy: ClusterViewLayout.View?
    private(set) var copySeq: UInt64 = 0
    /// Per home: what was found for which life and handle.
    let found = FoundIndexes()
    /// Requests (but lookups) whose replies have not arrived: while any
    /// is out, lookups go to the store, behind them (SPEC §9.6 "Order").
    /// A reply that never comes through `take` (the raw `receive()`) keeps
    /// its request here: lookups then go to the store, never wrong.
    var unanswered: Set<UInt64> = []
    /// The last reply-less request (a quiet release), and the highest
    /// request id answered: the store applied the former once it answered
    /// anything later.
    var quietRequest: UInt64 = 0
    var highestAnswered: UInt64 = 0
    /// Lookups answered here / sent to the store while peeking was on.
    var answered = 0
    var asked = 0

    init(view: ClusterViewLayout) { self.view = view }

    /// Whether every earlier request of this client is settled, so a peek
    /// cannot overtake one.
    var settled: Bool { unanswered.isEmpty && quietRequest <= highestAnswered }

    /// Everything found is let go (the client's region mappings changed).
    func forget() { found.forget() }

    /// The view as the store last published it, or nil (being rewritten).
    func currentView(in m: MappedMemory) -> ClusterViewLayout.View? {
        let s = view.sequence(in: m)
        if s == copySeq, let copy { return copy }
        guard let (v, at) = view.read(in: m) else { return nil }
        copy = v
        copySeq = at
        return v
    }
}

extension PlenumClient {
    /// Finds the store's published view (SPEC §10.4 "Client peeks"): a
    /// store in a cluster with directory indexes has one.
    func findClusterView() -> IndexPeeks? {
        guard let header = try? RegionHeader.read(from: memory, mappedSize: memory.size, path: "store region"),
              let seg = try? SegmentTable.find(ClusterViewLayout.segmentName, in: memory, header: header),
              let layout = ClusterViewLayout(base: seg.offset, length: seg.length, size: memory.size) else { return nil }
        return IndexPeeks(view: layout)
    }

    /// Whether `id` is sealed, read from its home's directory index by this
    /// client itself; nil: ask the store (see `IndexPeeks`).
    func peekContains(_ id: ObjectID) -> Bool? {
        guard readsIndexes, let p = indexPeeks else { return nil }
        guard p.settled, let answer = peekIndex(id, p) else {
            p.asked += 1
            return nil
        }
        p.answered += 1
        return answer
    }

    private func peekIndex(_ id: ObjectID, _ p: IndexPeeks) -> Bool? {
        guard let v = p.currentView(in: memory) else { return nil }
        let h = Home.of(id, among: v.live)
        guard let row = v.members[h], row.mapped, let (layout, m) = homeIndex(h, row, p) else { return nil }
        let a = layout.peek(id, in: m)
        // The answer holds for the view it was read in (a peek that fetched
        // the region table may have waited a round trip).
        guard p.view.sequence(in: memory) == p.copySeq else { return nil }
        if h == v.me {
            // This store's own table: exactly its directory (§10.4 writer).
            switch a {
            case nil: return nil
            case .sealed?: return true
            case .absent?, .reserved?: return false
            }
        }
        // Another home: only "sealed at another node" is beyond what this
        // store's own memory could contradict (§10.4 "Client peeks").
        if case .sealed(let owner)? = a, owner != v.me { return true }
        return nil
    }

    /// Home h's index in this life (its header checked, §10.4 reader), or nil.
    private func homeIndex(_ h: NodeID, _ row: ClusterViewLayout.Member, _ p: IndexPeeks) -> FoundIndexes.Index? {
        p.found.index(of: h, life: row.incarnation, handle: row.handle) {
            let region: (memory: MappedMemory, mapping: Mapping)?
            if h == p.copy?.me {
                region = (memory, mapping)
            } else {
                if peerRegions[row.handle] == nil { try? refreshRegions() }
                region = peerRegions[row.handle].map { ($0.memory, $0.mapping) }
            }
            guard let (m, mapping) = region,
                  let header = try? RegionHeader.read(from: m, mappedSize: m.size, path: "region of node \(h)"),
                  let seg = try? SegmentTable.find(DirectoryIndexLayout.segmentName, in: m, header: header) else { return nil }
            return DirectoryIndexLayout.found(at: seg.offset, length: seg.length, in: m, mapping: mapping, life: row.incarnation)
        }
    }
}
