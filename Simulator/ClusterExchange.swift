import PlenumCluster
import PlenumMemory
import PlenumRing
import PlenumStore
import PlenumWire

/// The `cluster` scenario (SPEC.md §7.6): N production `ClusterCore`s (each
/// with its `StoreCore` and real allocator) on the model, talking over
/// production rings placed as in ring-exchange (one-way reach, pool), one
/// client per node creating (locally or in a peer's memory), sealing,
/// aborting, reading, releasing and deleting objects from a small id space
/// in small regions, so ids are contested and ranges are reused all the
/// time. Nodes crash; peers learn it after a detection delay (a perfect
/// failure detector standing in for heartbeats) and fence them.
///
/// ```
///  node i coroutine:  poll rings from peers ─▶ ClusterCore.handle ─▶ actions ─▶ rings to peers
///                     client step (create / write / seal / get / read / release / delete)
///  region i: [ rings placed here | objects (StoreCore's allocator) ]     pool: [ rings ]
/// ```
/// What the node shell does (ring I/O, the client's reads and writes) is
/// simulator code; the protocol steps on object memory are the production
/// `ObjectMemory` that the daemon and client library call. `ClusterLedger`
/// judges every reply, free, read and the state at quiescence.
struct ClusterExchange {
    var operations = 40
    var slots = 4
    var slotLines = 4
    var ackBatch = 2
    /// Bytes of each node's object area: small, so ranges are reused.
    static let objectBytes = 4096
    static let idSpace = 10
    /// Operations between a crash and its detection by the peers: at least
    /// this, and each observer on its own delay (`ClusterWorld.detectDelay`).
    static let detectAfter = 400
    /// The cores' request timeout, in operations (the clock is 1 µs each).
    static let requestTimeoutSteps = 30_000

    func run(_ sim: Simulation) {
        let n = sim.config.nodes
        let line = sim.config.lineSize
        let slotSize = max(slotLines * line, 512)
        let pairs = RingExchange.pairs(nodes: n, scenario: .cluster)
        let ringBytes = try! RingLayout(base: 0, lineSize: line, slotCount: slots, slotSize: slotSize).totalBytes
        let ringSpan = (ringBytes + line - 1) / line * line
        let regionCount = n + (sim.config.pool ? 1 : 0)
        let home = pairs.map { RingExchange.placement($0.p, $0.c, config: sim.config)! }
        let ringsIn = (0..<regionCount).map { r in home.filter { $0 == r }.count * ringSpan }
        let indexBytes = ClusterIndex.bytes(line: line)
        sim.setUpMemory(regions: (0..<regionCount).map { r in (max(line, ringsIn[r] + (r < n ? Self.objectBytes + indexBytes : 0)), r < n ? r : nil) })
        var used = [Int](repeating: 0, count: regionCount)
        var layouts: [Int: RingLayout] = [:]     // key p * n + c
        for (i, pc) in pairs.enumerated() {
            let r = home[i]
            let layout = try! RingLayout(base: sim.mem.regions[r].base + used[r], lineSize: line, slotCount: slots, slotSize: slotSize)
            used[r] += ringSpan
            layouts[pc.p * n + pc.c] = layout
            sim.setUp(node: r < n ? r : pc.c) { Ring.format(layout, producer: UInt32(pc.p), consumer: UInt32(pc.c), in: $0) }
            sim.mem.lineWriter[layout.base / line] = -1
            sim.mem.lineWriter[layout.producerLine / line] = pc.p
            sim.mem.lineWriter[layout.consumerLine / line] = pc.c
            for l in (layout.slotsOffset / line)..<((layout.base + layout.totalBytes) / line) { sim.mem.lineWriter[l] = pc.p }
        }
        let index = ClusterIndex(sim: sim, nodes: n, bases: (0..<n).map { sim.mem.regions[$0].base + ringsIn[$0] + Self.objectBytes })
        let world = ClusterWorld(sim: sim, nodes: n, layouts: layouts, objectBase: ringsIn, operations: operations, ackBatch: ackBatch, index: index)
        sim.restarts = false
        sim.run((0..<n).map { me in { memory, _ in world.node(me, memory) } })
        world.checkQuiescence()
        sim.deliveries = world.ledger.checkedReads
    }
}

/// Everything the nodes of one `cluster` run share: the cores, the ring
/// ends, the clients and the ledger. One instance per run, used from the
/// simulation's single thread only.
final class ClusterWorld {
    let sim: Simulation
    let n: Int
    let layouts: [Int: RingLayout]
    let objectBase: [Int]
    let operations: Int
    let ackBatch: Int
    let ledger: ClusterLedger
    let index: ClusterIndex
    var cores: [ClusterCore] = []
    var outbox: [[[(corr: UInt64, message: PeerMessage)]]]
    /// Messages posted and not yet taken, per (producer, consumer).
    var inFlight: [Int]
    /// told[i][j]: node i was told node j is dead.
    var told: [[Bool]]
    /// A node saw the cluster quiescent: the run ended there (`quiesce`).
    var quiesced = false
    var crashStep: [Int?]
    /// Liveness (§7.3): when faults stopped and every death was known; the
    /// last step a peer message was posted or taken.
    var quietAt: Int?
    var messageMovedAt = 0
    /// Per (observer, crashed node): extra operations before the observer
    /// is told, drawn from the seed.
    let detectDelay: [Int]
    /// Crashed nodes every live node has been told of (the ledger knows).
    var fencedNodes: Set<Int> = []
    var clients: [SimClient] = []
    var replies: [[UInt64: StoreResponse]]
    var now: UInt64 { UInt64(sim.step) &* 1_000 }

    init(sim: Simulation, nodes n: Int, layouts: [Int: RingLayout], objectBase: [Int], operations: Int, ackBatch: Int, index: ClusterIndex) {
        self.sim = sim
        self.index = index
        self.n = n
        self.layouts = layouts
        self.objectBase = objectBase
        self.operations = operations
        self.ackBatch = ackBatch
        ledger = ClusterLedger(sim: sim)
        outbox = [[[(UInt64, PeerMessage)]]](repeating: [[(UInt64, PeerMessage)]](repeating: [], count: n), count: n)
        inFlight = [Int](repeating: 0, count: n * n)
        told = [[Bool]](repeating: [Bool](repeating: false, count: n), count: n)
        crashStep = [Int?](repeating: nil, count: n)
        var delays = SplitMix64(seed: sim.config.seed ^ 0xDE7E_C7ED)
        detectDelay = (0..<(n * n)).map { _ in delays.below(3) == 0 ? delays.below(3_000) : delays.below(200) }
        replies = [[UInt64: StoreResponse]](repeating: [:], count: n)
        var storeMutants = sim.config.mutants
        storeMutants.formIntersection(.freeDespiteRemoteReferences)
        for i in 0..<n {
            let reachable = Set((0..<n).filter { $0 != i && sim.config.reaches(i, region: $0) }.map(NodeID.init))
            var store = ClusterCore.StoreConfig(base: objectBase[i], capacity: ClusterExchange.objectBytes, lineSize: sim.config.lineSize)
            store.mutants = storeMutants
            var core = ClusterCore(config: .init(node: NodeID(i), incarnation: 1, reachable: reachable), store: store)
            core.config.requestTimeout = UInt64(ClusterExchange.requestTimeoutSteps) * 1_000
            core.indexesDirectory = true
            cores.append(core)
            clients.append(SimClient(node: i, operations: operations, seed: sim.config.seed &+ UInt64(i) &* 7919))
        }
        for i in 0..<n {
            var actions = cores[i].handle(.local(.connected(SimClient.firstID)), now: 0)
            for j in 0..<n where j != i {
                let size = sim.config.reaches(i, region: j) ? sim.mem.regions[j].size : nil
                actions += cores[i].handle(.peerUp(NodeID(j), PeerInfo(incarnation: 1, region: j + 1, regionSize: size)), now: 0)
                actions += cores[i].handle(.peerLoad(NodeID(j), PeerLoad(capacity: ClusterExchange.objectBytes, used: 0, objects: 0,
                                                                          largestFree: ClusterExchange.objectBytes, subscribers: false)), now: 0)
            }
            for case .send(let to, let corr, let m) in actions { outbox[i][Int(to)].append((corr, m)) }
        }
    }

    /// Node `me`'s mapping of the region behind a location's handle.
    func region(_ memory: SimMemory, handle: Int, of me: Int) -> (owner: Int, SimRegion) {
        let owner = handle == 0 ? me : handle - 1
        let r = sim.mem.regions[owner]
        return (owner, SimRegion(memory: memory, base: r.base, size: r.size))
    }

    // MARK: the node shell

    func node(_ me: Int, _ memory: SimMemory) {
        cores[me].peeker = SimIndexReader(index, me: me, memory: memory)
        var producers: [Int: RingProducer<SimMemory>] = [:]
        var consumers: [Int: RingConsumer<SimMemory>] = [:]
        for j in 0..<n where j != me {
            guard let p = try? RingProducer(memory: memory, layout: layouts[me * n + j]!) else {
                if !sim.crashed[me] { sim.fail(.protocolError, node: me, line: -1, "ring \(me)→\(j) could not attach") }
                return
            }
            producers[j] = p
            consumers[j] = RingConsumer(memory: memory, layout: layouts[j * n + me]!, ackBatch: ackBatch)
        }
        var loops = 0
        while !sim.shouldStop(me) {
            var progress = false
            detectDeaths(me, memory)
            checkLiveness()
            for j in 0..<n where j != me && !told[me][j] && !sim.shouldStop(me) {
                progress = receive(me, from: j, &consumers[j]!, memory) || progress
                progress = send(me, to: j, &producers[j]!) || progress
            }
            loops += 1
            if loops % 32 == 0 { apply(me, cores[me].handle(.local(.tick), now: now), memory) }
            if !sim.shouldStop(me) { progress = clients[me].step(self, memory) || progress }
            if quiescent { quiesce(); break }
            if !progress { sim.idle(me) }
        }
    }

    /// Peers of a crashed node are told after `detectAfter` operations plus
    /// the observer's own delay: observers of one membership change learn it
    /// at different times (a third of them up to 3,000 operations late), so
    /// nodes spend long stretches in different views (SPEC §10.4 "Views",
    /// "Handoff").
    private func detectDeaths(_ me: Int, _ memory: SimMemory) {
        for j in 0..<n where j != me && !told[me][j] && sim.crashed[j] {
            if crashStep[j] == nil { crashStep[j] = sim.step; ledger.crashed(j) }
            guard sim.step >= crashStep[j]! + ClusterExchange.detectAfter + detectDelay[me * n + j] else { continue }
            told[me][j] = true
            outbox[me][j].removeAll()
            inFlight[j * n + me] = 0
            inFlight[me * n + j] = 0
            apply(me, cores[me].handle(.peerDown(NodeID(j), why: "crashed (simulated failure detector)"), now: now), memory)
        }
        // Fenced once every node still live was told — re-checked every
        // time, since an observer that crashes before it is told no longer
        // counts (a fence decided only at a telling was never reached then).
        for j in 0..<n where crashStep[j] != nil && !fencedNodes.contains(j)
            && (0..<n).allSatisfy({ $0 == j || sim.crashed[$0] || told[$0][j] }) {
            fencedNodes.insert(j)
            ledger.fenced(j)
        }
    }

    private func receive(_ me: Int, from j: Int, _ consumer: inout RingConsumer<SimMemory>, _ memory: SimMemory) -> Bool {
        var got = false
        for _ in 0..<4 {
            let r = consumer.poll { m -> Result<(UInt64, PeerMessage), WireError> in
                Result { () throws(WireError) in (m.requestId, try PeerMessage.decode(kind: m.kind, body: Array(m.payload))) }
            }
            if sim.shouldStop(me) { return got }
            switch r {
            case .empty: return got
            case .corrupt(let why):
                sim.fail(why.isChecksum ? .checksum : .protocolError, node: me, line: -1, "ring \(j)→\(me): \(why)")
                return true
            case .delivered(.failure(let e)):
                sim.fail(.protocolError, node: me, line: -1, "ring \(j)→\(me): undecodable peer message: \(e)")
                return true
            case .delivered(.success(let (corr, m))):
                got = true
                // Counted as taken only once handled: its consequences are in
                // the outboxes by then, so quiescence cannot be seen between.
                apply(me, cores[me].handle(.message(from: NodeID(j), correlation: corr, m), now: now), memory)
                if !told[me][j] { inFlight[j * n + me] -= 1 }
                messageMovedAt = sim.step
            }
        }
        return got
    }

    private func send(_ me: Int, to j: Int, _ producer: inout RingProducer<SimMemory>) -> Bool {
        var sent = false
        while let (corr, m) = outbox[me][j].first, !sim.shouldStop(me) {
            let body = m.encodeBody()
            let r: PostResult
            do { r = try body.withUnsafeBytes { try producer.post(kind: m.kind.rawValue, requestId: corr, payload: $0) } } catch {
                if !sim.crashed[me] { sim.fail(.protocolError, node: me, line: -1, "ring \(me)→\(j): \(error)") }
                return true
            }
            if sim.shouldStop(me) { return sent }
            guard case .posted = r else { return sent }
            outbox[me][j].removeFirst()
            inFlight[me * n + j] += 1
            messageMovedAt = sim.step
            sent = true
        }
        return sent
    }

    /// Carries out a core's actions on node `me`, its directory index first
    /// (`memory` nil: before the run, when no memory action can arise).
    func apply(_ me: Int, _ actions: [ClusterAction], _ memory: SimMemory?) {
        if let memory {
            index.write(me, cores[me].takeIndexChanges(), memory)
            if sim.shouldStop(me) { return }
        }
        for a in actions {
            switch a {
            case .local(.reply(_, let rid, let r)): replies[me][rid] = r
            case .local(.notify), .local(.evicted): break
            case .local(.removed(let id)):
                sim.trace(me, "store-freed", line: -1, "\(id)")
                ledger.freed(id, owner: me)
            case .send(let to, let corr, let m):
                if !told[me][Int(to)] {
                    // A pipeline that was idle starts moving now (liveness).
                    if !livePending { messageMovedAt = sim.step }
                    outbox[me][Int(to)].append((corr, m))
                }
            case .checkDigest(let token, let handle, let l, let digest):
                guard let memory else { continue }
                let (owner, region) = self.region(memory, handle: handle, of: me)
                let ok = l.end <= region.size && ObjectMemory.verify(region, l, digest: digest)
                if !ok, !sim.config.injectsCorruption, !sim.shouldStop(me) {
                    sim.fail(.checksum, node: me, line: -1, "node \(me) read object at \(l.offset) of node \(owner): digest mismatch (stale or unflushed bytes)")
                }
                apply(me, cores[me].handle(.digestChecked(token: token, ok: ok), now: now), memory)
            case .invalidate(let l):
                guard let memory else { continue }
                ObjectMemory.drop(self.region(memory, handle: l.region, of: me).1, l)
            case .batchReserved: break
            }
        }
    }

    // MARK: quiescence

    /// Every live client is done, and nothing is in flight between live nodes.
    var quiescent: Bool {
        for i in 0..<n where !sim.crashed[i] {
            if !clients[i].done { return false }
            if cores[i].pendingRequests > 0 { return false }
            for j in 0..<n where j != i && !sim.crashed[j] {
                if !outbox[i][j].isEmpty || inFlight[i * n + j] > 0 { return false }
            }
            for j in 0..<n where sim.crashed[j] && !told[i][j] { return false }
        }
        return true
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

    var untoldText: String {
        (0..<(n * n)).filter { !sim.crashed[$0 / n] && sim.crashed[$0 % n] && !told[$0 / n][$0 % n] }.map { "\($0 % n) to \($0 / n)" }.joined(separator: ", ")
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
                     "the cluster did not quiesce\(sim.budgetExhausted ? " (step budget exhausted, \(sim.stepBudget) operations)" : ""): clients of nodes \(waiting) unfinished, message(s) in flight \(inFlightText), requests pending \((0..<n).map { cores[$0].pendingRequests }), outboxes \(outboxText), deaths untold \(untoldText)")
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
    }
}
