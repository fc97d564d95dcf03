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
/// time. Nodes crash and restart as new incarnations, often before their
/// silence is noticed; peers learn of deaths and new lives only from the
/// production heartbeat line and failure detector (`ClusterLinks.swift`),
/// each after its own delay.
///
/// ```
///  node i coroutine:  tick (heartbeats, deaths, new lives) ─▶ poll rings from peers ─▶ ClusterCore.handle ─▶ actions ─▶ rings to peers
///                     client step (create / write / seal / get / read / release / delete)
///  region i: [ links (ClusterLinkPlan) | life 0: objects | index | life 1: … ]     pool: [ links ]
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
    /// Lives per node (restarts + 1); each has its own object area and
    /// index, as a restarted node has a new region file (§10.8).
    static let lives = 3
    /// Operations between a node's heartbeat ticks (its `heartbeat_ms`).
    static let beatEvery = 100
    /// Silence after which a peer is fenced (`dead_after_ms`), at least;
    /// each observer has its own (`ClusterWorld.deadAfter`).
    static let deadAfter = 1_500
    /// The cores' request timeout, in operations (the clock is 1 µs each).
    static let requestTimeoutSteps = 30_000

    func run(_ sim: Simulation) {
        let n = sim.config.nodes
        let line = sim.config.lineSize
        let plan = ClusterLinkPlan(config: sim.config, slots: slots, slotSize: max(slotLines * line, 512), copies: 2 * Self.lives - 1)
        let regionCount = n + (sim.config.pool ? 1 : 0)
        let lifeSpan = Self.objectBytes + ClusterIndex.bytes(line: line)
        sim.setUpMemory(regions: (0..<regionCount).map { r in (max(line, plan.linkBytes(r) + (r < n ? Self.lives * lifeSpan : 0)), r < n ? r : nil) })
        let world = ClusterWorld(sim: sim, plan: plan, lifeSpan: lifeSpan, operations: operations, ackBatch: ackBatch)
        sim.restarts = true
        sim.maxLives = Self.lives
        sim.onCrash = { [unowned world] in world.crashed($0) }
        sim.run((0..<n).map { me in { memory, incarnation in world.node(me, memory, incarnation: incarnation) } })
        sim.onCrash = nil
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
    let plan: ClusterLinkPlan
    let regionBase: [Int]
    let lifeSpan: Int
    let operations: Int
    let ackBatch: Int
    let ledger: ClusterLedger
    let index: ClusterIndex
    var cores: [ClusterCore] = []
    var ends: [NodeEnds]
    /// Each node's life now (incarnation − 1).
    var life: [Int]
    /// watch[i][j]: node i's failure detector on node j.
    var watch: [[PeerWatch]]
    /// The ring copy pair p→c uses now (key p·n+c).
    var copy: [Int]
    var outbox: [[[(corr: UInt64, message: PeerMessage)]]]
    /// Messages posted to the pair's current copy and not yet taken.
    var inFlight: [Int]
    /// Per (observer, peer): operations of silence before the observer
    /// fences the peer, drawn from the seed: observers of one death learn
    /// it at different times (a third of them up to 3,000 operations late),
    /// so nodes spend long stretches in different views (SPEC §10.4).
    let deadAfter: [Int]
    /// Crashed lives (node · 8 + life) not yet fenced by every live node.
    var unfenced: Set<Int> = []
    /// A node saw the cluster quiescent: the run ended there (`quiesce`).
    var quiesced = false
    /// Liveness (§7.3): when faults stopped and membership settled; the
    /// last step a peer message was posted or taken.
    var quietAt: Int?
    var messageMovedAt = 0
    var clients: [SimClient] = []
    /// Link garbage (SPEC §7.6): its own randomness, and the count.
    var garbage: SplitMix64
    var replies: [[UInt64: StoreResponse]]
    var now: UInt64 { UInt64(sim.step) &* 1_000 }

    init(sim: Simulation, plan: ClusterLinkPlan, lifeSpan: Int, operations: Int, ackBatch: Int) {
        let n = sim.config.nodes
        self.sim = sim
        self.n = n
        self.plan = plan
        self.lifeSpan = lifeSpan
        regionBase = sim.mem.regions.map(\.base)
        self.operations = operations
        self.ackBatch = ackBatch
        let links = (0..<n).map(plan.linkBytes)
        ledger = ClusterLedger(sim: sim, nodes: n) { node, offset in (offset - links[node]) / lifeSpan }
        let bases = regionBase
        index = ClusterIndex(sim: sim, nodes: n, lives: ClusterExchange.lives) { node, l in
            bases[node] + links[node] + l * lifeSpan + ClusterExchange.objectBytes
        }
        ends = (0..<n).map { _ in NodeEnds() }
        life = [Int](repeating: 0, count: n)
        watch = [[PeerWatch]](repeating: [PeerWatch](repeating: PeerWatch(), count: n), count: n)
        copy = [Int](repeating: 0, count: n * n)
        outbox = [[[(UInt64, PeerMessage)]]](repeating: [[(UInt64, PeerMessage)]](repeating: [], count: n), count: n)
        inFlight = [Int](repeating: 0, count: n * n)
        garbage = SplitMix64(seed: sim.config.seed ^ 0x6A5B_A6E0)
        var delays = SplitMix64(seed: sim.config.seed ^ 0xDE7E_C7ED)
        deadAfter = (0..<(n * n)).map { _ in ClusterExchange.deadAfter + (delays.below(3) == 0 ? delays.below(3_000) : delays.below(300)) }
        replies = [[UInt64: StoreResponse]](repeating: [:], count: n)
        for p in 0..<n {
            for c in 0..<n where c != p { format(p, c, by: p) }
        }
        // The cluster starts formed: every pair met (heartbeat lines
        // written, hellos accepted), as after `plenum cluster up`.
        for p in 0..<n {
            let hb = Heartbeat(beat: 1, incarnation: 1, capacity: ClusterExchange.objectBytes, used: 0, objects: 0,
                               largestFree: ClusterExchange.objectBytes, flags: 0)
            for c in 0..<n where c != p {
                sim.setUp(node: p) { hb.publish(at: plan.heartbeat(p, c, regionBase: bases), in: $0) }
                watch[c][p].up(1, beat: 1, now: 0)
            }
        }
        for i in 0..<n {
            cores.append(makeCore(i))
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

    /// Node i's core in its life now: an empty store in that life's object area.
    private func makeCore(_ i: Int) -> ClusterCore {
        let reachable = Set((0..<n).filter { $0 != i && sim.config.reaches(i, region: $0) }.map(NodeID.init))
        var store = ClusterCore.StoreConfig(base: plan.linkBytes(i) + life[i] * lifeSpan, capacity: ClusterExchange.objectBytes, lineSize: sim.config.lineSize)
        var storeMutants = sim.config.mutants
        storeMutants.formIntersection(.freeDespiteRemoteReferences)
        store.mutants = storeMutants
        var config = ClusterCore.Config(node: NodeID(i), incarnation: incarnation(i), reachable: reachable)
        // A restarted node hears from every peer before it judges a
        // reservation (the first lives start as a formed cluster).
        if life[i] > 0 { config.awaiting = Set((0..<n).filter { $0 != i }.map(NodeID.init)) }
        var core = ClusterCore(config: config, store: store)
        core.config.requestTimeout = UInt64(ClusterExchange.requestTimeoutSteps) * 1_000
        core.indexesDirectory = true
        return core
    }

    /// Formats ring copy `copy[p·n+c]` of pair p→c, as `node` (out of band:
    /// fresh memory, like a new file).
    private func format(_ p: Int, _ c: Int, by node: Int) {
        let layout = plan.ring(p, c, copy: copy[p * n + c], regionBase: regionBase)
        sim.setUp(node: node) { Ring.format(layout, producer: UInt32(p), consumer: UInt32(c), in: $0) }
        let line = sim.config.lineSize
        // The descriptor: written at format, and after by its host alone
        // (repair, §10.3); a pool's by no one.
        let host = plan.host[p * n + c]
        sim.mem.lineWriter[layout.base / line] = host < n ? host : -1
        sim.mem.lineWriter[layout.producerLine / line] = p
        sim.mem.lineWriter[layout.consumerLine / line] = c
        for l in (layout.slotsOffset / line)..<((layout.base + layout.totalBytes) / line) { sim.mem.lineWriter[l] = p }
        sim.mem.lineWriter[plan.heartbeat(p, c, regionBase: regionBase) / line] = p
    }

    /// Node `me`'s memory handle for a location's region handle.
    func region(_ memory: SimMemory, handle: Int, of me: Int) -> (owner: Int, SimRegion) {
        let owner = handle == 0 ? me : handle - 1
        let r = sim.mem.regions[owner]
        return (owner, SimRegion(memory: memory, base: r.base, size: r.size))
    }

    /// A crash, as it happens: the ledger writes the life off.
    func crashed(_ j: Int) {
        ledger.crashed(j)
        unfenced.insert(j * ClusterLedger.livesPerNode + life[j])
    }

    /// A restarted node's new life: an empty store and index in a new
    /// object area, every pair of it on its next ring copy, a new client.
    private func restart(_ me: Int, _ memory: SimMemory, incarnation l: Int) {
        life[me] = l
        ledger.restarted(me, life: l)
        index.begin(me, life: l)
        for j in 0..<n where j != me {
            for k in [me * n + j, j * n + me] {
                copy[k] += 1
                inFlight[k] = 0
            }
            format(me, j, by: me)
            format(j, me, by: me)
            watch[me][j] = PeerWatch()
        }
        ends[me] = NodeEnds()
        ends[me].startedAt = sim.step
        cores[me] = makeCore(me)
        replies[me] = [:]
        clients[me] = SimClient(node: me, operations: operations / 2, seed: sim.config.seed &+ UInt64(me) &* 7919 &+ UInt64(l) &* 104_729)
        apply(me, cores[me].handle(.local(.connected(SimClient.firstID)), now: now), memory)
        for j in 0..<n where j != me { attach(me, j, memory) }
    }

    // MARK: the node shell

    func node(_ me: Int, _ memory: SimMemory, incarnation l: Int) {
        cores[me].peeker = SimIndexReader(index, me: me, memory: memory)
        if l > 0 {
            restart(me, memory, incarnation: l)
            cores[me].peeker = SimIndexReader(index, me: me, memory: memory)
        } else {
            for j in 0..<n where j != me {
                guard let p = try? RingProducer(memory: memory, layout: plan.ring(me, j, copy: 0, regionBase: regionBase)) else {
                    if !sim.crashed[me] { sim.fail(.protocolError, node: me, line: -1, "ring \(me)→\(j) could not attach") }
                    return
                }
                ends[me].producers[j] = p
                ends[me].producerCopy[j] = 0
                ends[me].consumers[j] = RingConsumer(memory: memory, layout: plan.ring(j, me, copy: 0, regionBase: regionBase), ackBatch: ackBatch)
                ends[me].consumerCopy[j] = 0
            }
        }
        var loops = 0
        while !sim.shouldStop(me) {
            var progress = false
            if sim.config.linkGarbagePPM > 0, sim.step < sim.config.maxSteps, garbage.chance(ppm: sim.config.linkGarbagePPM) { scribble() }
            tick(me, memory)
            noteFences()
            checkLiveness()
            for j in 0..<n where j != me && !sim.shouldStop(me) {
                progress = receive(me, from: j, memory) || progress
                progress = send(me, to: j) || progress
            }
            loops += 1
            if loops % 32 == 0, !sim.shouldStop(me) { apply(me, cores[me].handle(.local(.tick), now: now), memory) }
            if !sim.shouldStop(me) { progress = clients[me].step(self, memory) || progress }
            if quiescent { quiesce(); break }
            if !progress { sim.idle(me) }
        }
    }

    /// A crashed life is fenced once no live node holds it up: its objects
    /// and unsealed creations are gone for the checker. Re-checked every
    /// time, since an observer that crashes before it notices no longer
    /// counts.
    private func noteFences() {
        for d in unfenced {
            let j = d / ClusterLedger.livesPerNode, inc = UInt64(d % ClusterLedger.livesPerNode + 1)
            if (0..<n).allSatisfy({ $0 == j || sim.crashed[$0] || watch[$0][j].state != .up(inc) }) {
                unfenced.remove(d)
                ledger.fenced(life: d)
            }
        }
    }

    private func receive(_ me: Int, from j: Int, _ memory: SimMemory) -> Bool {
        var got = false
        let e = ends[me]
        guard e.consumers[j] != nil, e.producers[j] != nil else { return false }
        for _ in 0..<4 {
            let pair = copy[j * n + me], current = e.consumerCopy[j] == pair
            let r = e.consumers[j]!.poll { m -> Result<(UInt64, PeerMessage), WireError> in
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
                sim.trace(me, "peer-take", line: -1, "← node \(j) (copy \(e.consumerCopy[j]!))\(watch[me][j].isUp ? "" : " (not up)") #\(corr) \(m)")
                if case .hello(let inc) = m {
                    hello(me, from: j, inc, memory)
                } else if watch[me][j].isUp {
                    apply(me, cores[me].handle(.message(from: NodeID(j), correlation: corr, m), now: now), memory)
                }   // else: from a peer not up (waiting, fenced), dropped
                // Counted as taken only once handled: its consequences are in
                // the outboxes by then, so quiescence cannot be seen between.
                if current, copy[j * n + me] == pair { inFlight[j * n + me] -= 1 }
                messageMovedAt = sim.step
                if sim.shouldStop(me) { return got }
            }
        }
        return got
    }

    private func send(_ me: Int, to j: Int) -> Bool {
        var sent = false
        let e = ends[me]
        guard e.producers[j] != nil else { return false }
        while let (corr, m) = outbox[me][j].first, !sim.shouldStop(me) {
            let body = m.encodeBody()
            let r: PostResult
            do { r = try body.withUnsafeBytes { try e.producers[j]!.post(kind: m.kind.rawValue, requestId: corr, payload: $0) } } catch {
                if !sim.crashed[me] { sim.fail(.protocolError, node: me, line: -1, "ring \(me)→\(j): \(error)") }
                return true
            }
            if sim.shouldStop(me) { return sent }
            guard case .posted = r else { return sent }
            outbox[me][j].removeFirst()
            sim.trace(me, "peer-post", line: -1, "→ node \(j) (copy \(e.producerCopy[j]!)) #\(corr) \(m)")
            if e.producerCopy[j] == copy[me * n + j] { inFlight[me * n + j] += 1 }
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
                // Only to a peer that is up (§10.3: a fenced or waiting link drops it).
                if watch[me][Int(to)].isUp {
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
}
