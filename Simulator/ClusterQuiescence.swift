import PlenumCluster
import PlenumStore

/// When a `cluster` run is over (SPEC §7.3): every live client done,
/// nothing in flight between live nodes, membership settled; then the end
/// state is judged.
extension ClusterWorld {
    /// Every live client is done, nothing is in flight between live nodes,
    /// and membership has settled.
    var quiescent: Bool {
        for i in 0..<n where !sim.crashed[i] {
            if !clients[i].done { return false }
            if cores[i].pendingRequests > 0 { return false }
            for j in 0..<n where j != i && !sim.crashed[j] {
                if !outbox[i][j].isEmpty || inFlight[i * n + j] > 0 { return false }
            }
        }
        return unsettled.isEmpty
    }

    /// Whether a crashed node will come back (a restart is due).
    func restartDue(_ j: Int) -> Bool { sim.crashed[j] && sim.restarts && life[j] + 1 < sim.maxLives && !sim.stopping }

    /// What keeps membership from settling: a restart due, a death some live
    /// node has not noticed, a life some live node has not met.
    var unsettled: [String] {
        var why: [String] = []
        for j in 0..<n {
            if restartDue(j) { why.append("node \(j) restarts"); continue }
            for i in 0..<n where i != j && !sim.crashed[i] {
                if sim.crashed[j] {
                    // Any life of it: one that died before its successor was met, too.
                    if watch[i][j].isUp { why.append("node \(i) holds dead node \(j) up (\(watch[i][j].state))") }
                } else if watch[i][j].state != .up(incarnation(j)) {
                    why.append("node \(i) has not met node \(j)'s life \(life[j]) (\(watch[i][j].state))")
                }
            }
        }
        return why
    }

    /// Messages posted or waiting to be, between two live nodes.
    var livePending: Bool {
        (0..<(n * n)).contains { k in
            let (i, j) = (k / n, k % n)
            return i != j && !sim.crashed[i] && !sim.crashed[j] && (inFlight[k] != 0 || !outbox[i][j].isEmpty)
        }
    }

    var inFlightText: String {
        (0..<(n * n)).filter { inFlight[$0] != 0 }.map { "\($0 / n)→\($0 % n): \(inFlight[$0])" }.joined(separator: ", ")
    }

    var outboxText: String {
        (0..<(n * n)).filter { $0 / n != $0 % n && !outbox[$0 / n][$0 % n].isEmpty }.map { "\($0 / n)→\($0 % n): \(outbox[$0 / n][$0 % n].count)" }.joined(separator: ", ")
    }

    /// The first node to see the cluster quiescent ends the run there: the
    /// end state is judged at that moment and every node stops (no crash is
    /// injected once stopping). Letting the others run on let a node post
    /// or crash after its peers had stopped for good, which read as "did
    /// not quiesce" (issue 24, cluster seeds 3988, 5624, 2267).
    func quiesce() {
        guard !quiesced else { return }
        quiesced = true
        checkEndState()
        sim.stopping = true
    }

    /// At the end: the run quiesced (judged then), or it did not.
    func checkQuiescence() {
        guard sim.violation == nil, !quiesced else { return }
        guard quiescent else {
            let waiting = (0..<n).filter { !sim.crashed[$0] && !clients[$0].done }
            sim.fail(.stalled, node: waiting.first ?? 0, line: -1,
                     "the cluster did not quiesce\(sim.budgetExhausted ? " (step budget exhausted, \(sim.stepBudget) operations)" : ""): clients of nodes \(waiting) unfinished, message(s) in flight \(inFlightText), requests pending \((0..<n).map { cores[$0].pendingRequests }), outboxes \(outboxText), membership \(unsettled.isEmpty ? "settled" : unsettled.joined(separator: "; "))")
            return
        }
        checkEndState()
    }

    /// Every reference released or reclaimed, nothing unsealed, the
    /// allocator's bytes those of the objects.
    func checkEndState() {
        guard sim.violation == nil else { return }
        for i in 0..<n where !sim.crashed[i] {
            let store = cores[i].store
            if let broken = store.checkInvariants() { sim.fail(.leak, node: i, line: -1, "node \(i): \(broken)"); return }
            for j in 0..<n where j != i {
                let refs = store.references(of: ClusterCore.pseudoClient(NodeID(j)))
                if refs > 0 {
                    sim.fail(.leak, node: i, line: -1, "node \(i) still counts \(refs) reference(s) of node \(j)\(sim.crashed[j] ? ", which crashed" : "") after every client released")
                    return
                }
            }
            let stats = store.stats
            if stats.objects != stats.sealed {
                sim.fail(.leak, node: i, line: -1, "node \(i) holds \(stats.objects - stats.sealed) unsealed object(s) after every client finished")
                return
            }
        }
        checkDirectories()
    }

    /// Every home's directory says what the cluster holds (SPEC §7.3, §10.4):
    /// its index is not behind it, no core keeps work open, no reservation
    /// outlives its create, every entry names a live owner that holds the
    /// object sealed, and every sealed object has its entry at its home. A
    /// stale entry answers later lookups and deletes wrongly (a reservation
    /// left behind answers notSealed for ever).
    func checkDirectories() {
        let up = (0..<n).filter { !sim.crashed[$0] }
        // Only once every live node computes homes in one view it has taken
        // over: a node that has just noticed a death re-homes its entries
        // in its next step (SPEC §10.4 "Handoff").
        guard let v = up.first.map({ cores[$0].view }), up.allSatisfy({ cores[$0].view == v && cores[$0].takenOver }) else { return }
        let directories = up.map { cores[$0].directorySnapshot }   // once per node: each is a copy
        func directory(_ i: Int) -> [ObjectID: (reservedBy: NodeID, owner: NodeID?)] { directories[up.firstIndex(of: i)!] }
        for i in up {
            if let d = index.behind(i, directory: directory(i)) {
                sim.fail(.mismatch, node: i, line: -1, "node \(i)'s directory index is behind its directory: \(d)")
                return
            }
        }
        for i in up where !cores[i].openWork.isEmpty {
            sim.fail(.leak, node: i, line: -1, "node \(i) keeps work open after every client finished: \(cores[i].openWork.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
            return
        }
        for i in up {
            for (id, e) in directory(i).sorted(by: { $0.key < $1.key }) {
                if cores[i].home(of: id) != NodeID(i) {
                    sim.fail(.leak, node: i, line: -1, "node \(i) keeps a directory entry for \(id), homed at node \(cores[i].home(of: id))")
                    return
                }
                guard let o = e.owner else {
                    sim.fail(.leak, node: i, line: -1, "node \(i) keeps \(id) reserved by node \(e.reservedBy) after every create ended")
                    return
                }
                guard up.contains(Int(o)), cores[Int(o)].store.isSealed(id) else {
                    sim.fail(.leak, node: i, line: -1, "node \(i) says \(id) is sealed at node \(o), which does not hold it")
                    return
                }
            }
        }
        for o in up {
            for (id, _, _) in cores[o].store.sealedObjects {
                let h = Int(cores[o].home(of: id))
                let entry = up.contains(h) ? directory(h)[id] : nil
                guard entry?.owner == NodeID(o) else {
                    sim.fail(.leak, node: o, line: -1, "node \(o) holds \(id) sealed, but its home node \(h) has \(entry.map { "it at \($0.owner.map(String.init) ?? "none")" } ?? "no entry")")
                    return
                }
            }
        }
    }
}
