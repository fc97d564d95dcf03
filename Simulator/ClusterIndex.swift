import PlenumCluster
import PlenumMemory
import PlenumStore

/// The directory index in the `cluster` scenario (SPEC §10.4 "Directory
/// index", §7.6): every node keeps one in its region — two buckets, so
/// buckets fill and overflow — writes it with the production writer and
/// reads its peers' with the production seqlock read, on the model. Each
/// life of a node has its own index (in its own object area: a new region
/// file, §10.8); a reader reads the life its core names.
///
/// The judge: a peek must answer a state the home's index really held at
/// some moment of the read. Each state of an id is valid from the moment
/// its home began to write it until the home finished writing the next
/// one; an answer valid at no moment of [first step, last step] of the
/// read is a stale read (a skipped invalidate, a torn line taken as whole).
///
/// ```
///  home:   update k ┌─ state k valid ───────────────────────┐
///                   began            update k+1 began ... finished
///  reader:                  [ read begins ........ ends ]  answer ∈ { states valid within }
/// ```
final class ClusterIndex {
    static let buckets = 2
    unowned(unsafe) let sim: Simulation
    /// Per home, per life: where its index is, and its writer (nil: a life not begun).
    var layouts: [[DirectoryIndexLayout?]]
    var writers: [[DirectoryIndexWriter?]]
    /// Each home's life now.
    var life: [Int]
    /// history[home][life][id]: states in order, valid from `from` until `until` (nil: still).
    var history: [[[ObjectID: [(answer: IndexAnswer, from: Int, until: Int?)]]]]
    var peeks = 0
    let base: (_ node: Int, _ life: Int) -> Int

    init(sim: Simulation, nodes n: Int, lives: Int, base: @escaping (Int, Int) -> Int) {
        self.sim = sim
        self.base = base
        layouts = Array(repeating: Array(repeating: nil, count: lives), count: n)
        writers = Array(repeating: Array(repeating: nil, count: lives), count: n)
        history = Array(repeating: Array(repeating: [:], count: lives), count: n)
        life = Array(repeating: 0, count: n)
        for i in 0..<n { begin(i, life: 0) }
    }

    /// Life `l` of node `me` formats its own index (before it runs).
    func begin(_ me: Int, life l: Int) {
        let layout = DirectoryIndexLayout(base: base(me, l), lineSize: sim.config.lineSize, buckets: Self.buckets)!
        layouts[me][l] = layout
        writers[me][l] = DirectoryIndexWriter(layout: layout)
        life[me] = l
        sim.setUp(node: me) { layout.format(incarnation: UInt64(l + 1), in: $0) }
        for line in (layout.base / layout.lineSize)..<((layout.base + layout.totalBytes) / layout.lineSize) { sim.mem.lineWriter[line] = me }
    }

    static func bytes(line: Int) -> Int { line * (1 + buckets) }

    /// Home `me` writes what its directory changed (before its actions go out).
    func write(_ me: Int, _ changes: [(ObjectID, IndexAnswer?)], _ memory: SimMemory) {
        let l = life[me]
        for (id, a) in changes {
            let state = a ?? .absent
            var h = history[me][l][id] ?? [(.absent, 0, nil)]
            let began = sim.step
            h.append((state, began, nil))
            history[me][l][id] = h
            writers[me][l]!.update(id, a, in: memory)
            if sim.shouldStop(me) { return }
            // The previous state stays valid until the rewrite is complete.
            if var h = history[me][l][id], h.count >= 2 { h[h.count - 2].until = sim.step; history[me][l][id] = h }
        }
    }

    /// At quiescence: the last state home `me` wrote for each id is what
    /// its directory says now, and every entry was written (SPEC §10.4
    /// "Directory index": an index is never behind its home). Returns what
    /// differs, if anything.
    func behind(_ me: Int, directory: [ObjectID: (reservedBy: NodeID, owner: NodeID?)]) -> String? {
        let written = history[me][life[me]]
        for id in Set(written.keys).union(directory.keys).sorted() {
            let now: IndexAnswer = directory[id].map { e in e.owner.map { .sealed(owner: $0) } ?? .reserved(by: e.reservedBy) } ?? .absent
            let last = written[id]?.last?.answer ?? .absent
            if last != now { return "\(id): the index was last written \(last), the directory holds \(now)" }
        }
        return nil
    }

    /// Node `me`'s peek of `id` at the index of `home`'s life `l`, judged.
    func peek(_ me: Int, _ id: ObjectID, at home: Int, life l: Int, _ memory: SimMemory) -> IndexAnswer? {
        guard sim.config.reaches(me, region: home), l >= 0, l < layouts[home].count, let layout = layouts[home][l] else { return nil }
        let start = sim.step
        let a = layout.peek(id, in: memory)
        let end = sim.step
        guard let a, !sim.shouldStop(me) else { return a }
        peeks += 1
        let states = history[home][l][id] ?? [(.absent, 0, nil)]
        let valid = states.contains { s in s.answer == a && s.from <= end && (s.until ?? Int.max) >= start }
        if !valid {
            sim.fail(.staleRead, node: me, line: layout.bucketOffset(layout.bucket(of: id)) / sim.config.lineSize,
                     "node \(me) read \(a) for \(id) in node \(home)'s directory index (life \(l)) over steps \(start)…\(end); the home's states: \(states.map { "\($0.answer) \($0.from)…\($0.until.map(String.init) ?? "now")" })")
        }
        return a
    }
}

/// A node's reader of its peers' indexes, for its `ClusterCore`.
final class SimIndexReader: DirectoryPeeker, @unchecked Sendable {
    let index: ClusterIndex
    let me: Int
    let memory: SimMemory
    init(_ index: ClusterIndex, me: Int, memory: SimMemory) { self.index = index; self.me = me; self.memory = memory }
    func peek(_ id: ObjectID, at home: NodeID, incarnation: UInt64) -> IndexAnswer? {
        index.peek(me, id, at: Int(home), life: Int(incarnation) - 1, memory)
    }
}
