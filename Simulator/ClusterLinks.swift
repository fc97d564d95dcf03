import PlenumCluster
import PlenumMemory
import PlenumRing

/// Where the `cluster` scenario's links live (SPEC §7.6): per ordered pair
/// p→c, in the region the placement names, one heartbeat line (writer p,
/// the production `Heartbeat` line) and `copies` rings, one per life of
/// the pair. A restart of either node moves the pair to its next copy —
/// fresh memory, as a restarted node's new region file (§10.8) and the
/// block its peer re-creates; the old copy is never read again, so what a
/// dead life left there is discarded, as the producer reset does (§5.6).
///
/// ```
///  region r: [ heartbeat lines of the pairs hosted here | ring copy 0 | … | copy C−1 ] [ life 0: objects | index ] [ life 1 ] …
///            copy k: [ ring of hosted pair 0 | ring of hosted pair 1 | … ]
/// ```
struct ClusterLinkPlan {
    let n: Int
    let line: Int
    let slots: Int
    let slotSize: Int
    let ringSpan: Int
    let heartbeatSpan: Int
    let copies: Int
    /// Per pair key p·n+c: host region and index among the pairs it hosts.
    var host: [Int]
    var slot: [Int]
    /// Pairs hosted per region.
    var hosted: [Int]

    init(config: SimConfig, slots: Int, slotSize: Int, copies: Int) {
        n = config.nodes
        line = config.lineSize
        self.slots = slots
        self.slotSize = slotSize
        self.copies = copies
        let ringBytes = try! RingLayout(base: 0, lineSize: line, slotCount: slots, slotSize: slotSize).totalBytes
        ringSpan = (ringBytes + line - 1) / line * line
        heartbeatSpan = (64 + line - 1) / line * line
        host = [Int](repeating: -1, count: n * n)
        slot = [Int](repeating: -1, count: n * n)
        hosted = [Int](repeating: 0, count: n + (config.pool ? 1 : 0))
        for (p, c) in RingExchange.pairs(nodes: n, scenario: .cluster) {
            let r = RingExchange.placement(p, c, config: config)!
            host[p * n + c] = r
            slot[p * n + c] = hosted[r]
            hosted[r] += 1
        }
    }

    /// Bytes of region r taken by links (before any life's object area).
    func linkBytes(_ r: Int) -> Int { hosted[r] * (heartbeatSpan + copies * ringSpan) }

    /// Address of the heartbeat line p→c (region `base` is the host's start).
    func heartbeat(_ p: Int, _ c: Int, regionBase: [Int]) -> Int {
        let k = p * n + c
        return regionBase[host[k]] + slot[k] * heartbeatSpan
    }

    func ring(_ p: Int, _ c: Int, copy: Int, regionBase: [Int]) -> RingLayout {
        let k = p * n + c, r = host[k]
        let base = regionBase[r] + hosted[r] * heartbeatSpan + (copy * hosted[r] + slot[k]) * ringSpan
        return try! RingLayout(base: base, lineSize: line, slotCount: slots, slotSize: slotSize)
    }
}

/// One node's ends of its links: its own, touched only by its coroutine
/// (a suspended post or poll holds exclusive access to these dictionaries).
final class NodeEnds {
    var producers: [Int: RingProducer<SimMemory>] = [:]
    var consumers: [Int: RingConsumer<SimMemory>] = [:]
    /// The copy each end is attached to (−1: none).
    var producerCopy: [Int: Int] = [:]
    var consumerCopy: [Int: Int] = [:]
    var beat: UInt64 = 0
    var lastTick = Int.min / 2
    /// When this life started (silence of a peer never met counts from here).
    var startedAt = 0
}

/// The node shell's links (SPEC §10.3 as the daemon's `PeerLinks` runs it):
/// heartbeats published and read with the production `Heartbeat` line,
/// judged by the production failure detector `PeerWatch`, hellos first on
/// every attachment. No oracle tells a node of a death: silence does, or a
/// new incarnation on the line (a restart faster than the silence).
extension ClusterWorld {
    /// Attaches `me`'s ends with `j` to the pair's current copies; the
    /// outbound queue becomes exactly [hello] (§10.3 "Attach").
    /// A link is polled only while both ends are attached, as the daemon's.
    /// An end already on its pair's current copy is kept: a consumer made
    /// afresh there would resume from the last acknowledgement it
    /// published and deliver again what it had taken since (seeds 122928,
    /// 161824: an `acquire` delivered twice, a reference never released).
    func attach(_ me: Int, _ j: Int, _ memory: SimMemory) {
        let e = ends[me]
        let pc = copy[me * n + j], cc = copy[j * n + me]
        if e.producers[j] == nil || e.producerCopy[j] != pc {
            // A new attachment's queue is exactly [hello] (§10.3 "Attach").
            outbox[me][j] = [(0, .hello(incarnation: incarnation(me)))]
            e.producers[j] = nil
            e.producerCopy[j] = nil
            do {
                e.producers[j] = try RingProducer(memory: memory, layout: plan.ring(me, j, copy: pc, regionBase: regionBase))
                e.producerCopy[j] = pc
            } catch {
                // A scribbled descriptor: the host repairs it on its tick
                // and this end attaches on a later one (§10.3 "Repair").
                // Without garbage, nothing may make an attach fail.
                if !sim.shouldStop(me), sim.config.linkGarbagePPM == 0 {
                    sim.fail(.protocolError, node: me, line: -1, "ring \(me)→\(j) copy \(pc) could not attach: \(error)")
                }
                sim.trace(me, "attach-failed", line: -1, "ring \(me)→\(j) copy \(pc): \(error)")
            }
        }
        if e.consumers[j] == nil || e.consumerCopy[j] != cc {
            e.consumers[j] = RingConsumer(memory: memory, layout: plan.ring(j, me, copy: cc, regionBase: regionBase), ackBatch: ackBatch)
            e.consumerCopy[j] = cc
        }
    }

    /// Link garbage (SPEC §7.6): random bytes over the heartbeat line or
    /// the ring descriptor (current copy) of a pair hosted in a node's
    /// region, written from outside every cache.
    func scribble() {
        let hosted = (0..<(n * n)).filter { plan.host[$0] >= 0 && plan.host[$0] < n }
        guard !hosted.isEmpty else { return }
        let k = hosted[garbage.below(hosted.count)]
        let (p, c) = (k / n, k % n)
        let heartbeat = garbage.below(2) == 0
        let at = heartbeat ? plan.heartbeat(p, c, regionBase: regionBase) : plan.ring(p, c, copy: copy[k], regionBase: regionBase).base
        let bytes = (0..<(heartbeat ? 64 : 40)).map { _ in UInt8(truncatingIfNeeded: garbage.next()) }
        sim.mem.scribble(at: at, bytes)
        sim.scribbleCount += 1
        sim.trace(plan.host[k], "scribble", line: at / sim.config.lineSize, "\(heartbeat ? "heartbeat line" : "ring descriptor (copy \(copy[k]))") of \(p)→\(c)")
    }

    /// The host's repair of the descriptors of the rings it hosts (their
    /// current copies; §10.3 "Repair"), before its links, each tick.
    func repairHosted(_ me: Int, _ memory: SimMemory) {
        for k in 0..<(n * n) where plan.host[k] == me && k / n != k % n {
            let (p, c) = (k / n, k % n)
            let fixed = Ring.repairDescriptor(plan.ring(p, c, copy: copy[k], regionBase: regionBase), producer: UInt32(p), consumer: UInt32(c), in: memory)
            if sim.shouldStop(me) { return }   // died in it: what it read was not memory
            if fixed {
                sim.repairCount += 1
                sim.trace(me, "repaired", line: -1, "descriptor of ring \(p)→\(c) copy \(copy[k])")
            }
        }
    }

    func incarnation(_ node: Int) -> UInt64 { UInt64(life[node] + 1) }

    /// The heartbeat tick (§10.3 "Order within a tick"): publish into every
    /// outbound line, read every inbound one, accept a pending hello, then
    /// the death rule. A peer fenced while it still runs is killed (§7.6:
    /// a stalled node stays fenced until it restarts, SPEC §10.10 Limits).
    func tick(_ me: Int, _ memory: SimMemory) {
        let e = ends[me]
        guard sim.step - e.lastTick >= ClusterExchange.beatEvery else { return }
        e.lastTick = sim.step
        e.beat += 1
        let s = cores[me].store.stats
        let hb = Heartbeat(beat: e.beat, incarnation: incarnation(me), capacity: s.capacity, used: s.used, objects: s.objects,
                           largestFree: s.allocator.largestFree, flags: cores[me].store.subscribers.isEmpty ? 0 : Heartbeat.flagSubscribers)
        if sim.config.linkGarbagePPM > 0 {
            repairHosted(me, memory)
            if sim.shouldStop(me) { return }
        }
        for j in 0..<n where j != me {
            // A producer whose attach failed (a scribbled descriptor) tries again.
            if e.producers[j] == nil { attach(me, j, memory) }
            // A link not up whose rings were re-created (the peer's new
            // life, met first after it): attached again (§10.3 "Re-map a
            // replaced file").
            if !watch[me][j].isUp, e.producerCopy[j] != copy[me * n + j] || e.consumerCopy[j] != copy[j * n + me] {
                attach(me, j, memory)
            }
            hb.publish(at: plan.heartbeat(me, j, regionBase: regionBase), in: memory)
            if sim.shouldStop(me) { return }
            let theirs = Heartbeat.read(at: plan.heartbeat(j, me, regionBase: regionBase), in: memory)
            if sim.shouldStop(me) { return }
            if let theirs {
                if case .newLife(let wasUp) = watch[me][j].observe(incarnation: theirs.incarnation, beat: theirs.beat, now: now) {
                    sim.trace(me, "peer-restarted", line: -1, "node \(j) incarnation \(theirs.incarnation)")
                    if wasUp { down(me, j, "restarted (new incarnation)", memory) }
                    attach(me, j, memory)
                    continue
                }
                let pending = watch[me][j].pendingHello
                if pending != 0, pending == theirs.incarnation { hello(me, from: j, pending, memory) }
            }
            if let silent = watch[me][j].fenceIfSilent(now: now, deadAfter: UInt64(deadAfter[me * n + j]) * 1_000) {
                sim.trace(me, "peer-dead", line: -1, "node \(j) silent for \(silent / 1_000) operations")
                down(me, j, "heartbeat silent", memory)
                // Fenced while that life runs (not a life that died, whose
                // successor may be starting): it must restart to be met again.
                if !sim.crashed[j], watch[me][j].state == .fenced(incarnation(j)) {
                    sim.crash(j, "fenced by node \(me) while running (silent \(silent / 1_000) operations): killed, to restart")
                }
            } else if watch[me][j].isUp, let theirs {
                apply(me, cores[me].handle(.peerLoad(NodeID(j), theirs.load), now: now), memory)
            } else if cores[me].unresolved.contains(NodeID(j)),
                      sim.step - max(e.startedAt, Int(watch[me][j].lastBeatAt / 1_000)) > deadAfter[me * n + j] {
                // Never met since this life started, and silent as long as
                // a death takes: not running (SPEC §10.4 "Starting").
                sim.trace(me, "peer-absent", line: -1, "node \(j)")
                apply(me, cores[me].handle(.peerAbsent(NodeID(j)), now: now), memory)
            }
            if sim.shouldStop(me) { return }
        }
        // A tick ends with a yield, as the daemon's timer hands its CPU
        // over: a node that always has work must not starve its peers of
        // their beats (after the fault phase nothing else preempts it).
        sim.idle(me)
    }

    /// A hello from `j` (§10.3 "Hello and incarnations").
    func hello(_ me: Int, from j: Int, _ inc: UInt64, _ memory: SimMemory) {
        let line = Heartbeat.read(at: plan.heartbeat(j, me, regionBase: regionBase), in: memory)
        if sim.shouldStop(me) { return }
        guard case .accept(let newLife, let wasUp) = watch[me][j].hello(inc, line: line.map { ($0.incarnation, $0.beat) }), let line else { return }
        if newLife {
            // A new life's hello before a tick read its line: the inbound
            // ring is current; the outbound ring moves to the current copy.
            if wasUp { down(me, j, "restarted (new incarnation)", memory) }
            attach(me, j, memory)
        }
        watch[me][j].up(inc, beat: line.beat, now: now)
        sim.trace(me, "peer-up", line: -1, "node \(j) incarnation \(inc)")
        let size = sim.config.reaches(me, region: j) ? sim.mem.regions[j].size : nil
        apply(me, cores[me].handle(.peerUp(NodeID(j), PeerInfo(incarnation: inc, region: j + 1, regionSize: size)), now: now), memory)
    }

    /// `me`'s core loses `j`: its queue to `j` is dropped.
    func down(_ me: Int, _ j: Int, _ why: String, _ memory: SimMemory) {
        outbox[me][j].removeAll()
        apply(me, cores[me].handle(.peerDown(NodeID(j), why: why), now: now), memory)
    }
}
