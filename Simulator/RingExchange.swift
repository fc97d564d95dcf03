import PlenumMemory
import PlenumRing

/// The `ring-exchange` scenario: the production `RingProducer` and
/// `RingConsumer` on N nodes, a ring each way between neighbours (every
/// pair when N ≤ 3), many messages under random faults, crashes and
/// restarts (SPEC.md §7.6).
///
/// Placement follows the cluster's rule (SPEC §10.3): the ring p→c lives in
/// c's region if p reaches it, else in p's region if c reaches that, else in
/// the pool. The region's owner (the consumer, for a pool) formats it.
/// ```
///  N = 2:   region 0: ring 1→0      region 1: ring 0→1
///  N = 4:   0 ⇄ 1 ⇄ 2 ⇄ 3 ⇄ 0   (8 rings), some in the pool if reach is one-way
/// ```
/// A restarted node re-attaches its producers (resume, or a reset when the
/// seed says the producer lost its state) and its consumers (resume from
/// the acknowledgement, or a reset request). `RingLedger` judges every
/// delivery and restart; at the end everything posted must have been
/// delivered or discarded by a reset.
struct RingExchange {
    var messages = 40
    var slots = 4
    var slotLines = 2
    var ackBatch = 2

    /// The ordered pairs that get a ring: a full mesh for the cluster.
    static func pairs(nodes n: Int, scenario: Scenario) -> [(p: Int, c: Int)] {
        scenario == .cluster ? (0..<n).flatMap { p in (0..<n).filter { $0 != p }.map { (p: p, c: $0) } } : pairs(nodes: n)
    }

    /// The ordered pairs that get a ring in ring-exchange.
    static func pairs(nodes n: Int) -> [(p: Int, c: Int)] {
        var result: [(Int, Int)] = []
        for i in 0..<n {
            for j in 0..<n where i != j && (n <= 3 || (j - i + n) % n == 1 || (i - j + n) % n == 1) { result.append((i, j)) }
        }
        return result
    }

    /// The region a ring p→c lives in, or nil when the pair shares none.
    static func placement(_ p: Int, _ c: Int, config: SimConfig) -> Int? {
        if config.reaches(p, region: c) { return c }
        if config.reaches(c, region: p) { return p }
        let pool = config.nodes
        if config.pool, config.reaches(p, region: pool), config.reaches(c, region: pool) { return pool }
        return nil
    }

    func run(_ sim: Simulation) {
        let n = sim.config.nodes
        let line = sim.config.lineSize
        let slotSize = slotLines * line
        let pairs = Self.pairs(nodes: n)
        let probe = try! RingLayout(base: 0, lineSize: line, slotCount: slots, slotSize: slotSize)
        let ringBytes = (probe.totalBytes + line - 1) / line * line
        let regionCount = n + (sim.config.pool ? 1 : 0)
        var home: [Int] = []
        var perRegion = [Int](repeating: 0, count: regionCount)
        for (p, c) in pairs {
            guard let r = Self.placement(p, c, config: sim.config) else {
                preconditionFailure("ring-exchange: nodes \(p) and \(c) share no memory (the run generator must not pick this reach)")
            }
            home.append(r)
            perRegion[r] += 1
        }
        sim.setUpMemory(regions: (0..<regionCount).map { r in (max(1, perRegion[r]) * ringBytes, r < n ? r : nil) })
        var used = [Int](repeating: 0, count: regionCount)
        var layouts: [RingLayout] = []
        if sim.prefetchable.isEmpty { sim.prefetchable = [[Int]](repeating: [], count: n) }
        for (i, (p, c)) in pairs.enumerated() {
            let base = sim.mem.regions[home[i]].base + used[home[i]] * ringBytes
            used[home[i]] += 1
            let layout = try! RingLayout(base: base, lineSize: line, slotCount: slots, slotSize: slotSize,
                                         sharedControlLine: sim.config.mutants.contains(.sharedControlLine))
            layouts.append(layout)
            sim.setUp(node: home[i] < n ? home[i] : c) { Ring.format(layout, producer: UInt32(p), consumer: UInt32(c), in: $0) }
            // The single writer of each line, from the layout as designed.
            let intended = try! RingLayout(base: base, lineSize: line, slotCount: slots, slotSize: slotSize)
            sim.mem.lineWriter[intended.base / line] = -1                                  // descriptor: immutable
            sim.mem.lineWriter[intended.producerLine / line] = p
            sim.mem.lineWriter[intended.consumerLine / line] = c
            let slotLines = Array((intended.slotsOffset / line)..<((intended.base + intended.totalBytes) / line))
            for l in slotLines { sim.mem.lineWriter[l] = p }
            // The consumer reads the producer line and the slots; the producer
            // reads the consumer line (and the slots, when it resumes).
            sim.prefetchable[c] += [intended.producerLine / line] + slotLines
            sim.prefetchable[p] += [intended.consumerLine / line]
        }
        let maxPayload = slotSize - RingLayout.slotHeaderBytes
        let ledgers = pairs.enumerated().map { (i, pc) in RingLedger(ring: i, producer: pc.p, consumer: pc.c, messages: messages) }
        sim.restarts = true
        var decisions = SplitMix64(seed: sim.config.seed ^ 0x5EED_CAFE)
        let liveness = RingLiveness(sim: sim, ledgers: ledgers)
        let programs: [(SimMemory, Int) -> Void] = (0..<n).map { me in
            { memory, incarnation in
                let outs = ledgers.filter { $0.producer == me }
                let ins = ledgers.filter { $0.consumer == me }
                var producers: [RingProducer<SimMemory>] = []
                for l in outs {
                    guard let p = try? RingProducer(memory: memory, layout: layouts[l.ring]) else {
                        if !sim.crashed[me] { sim.fail(.protocolError, node: me, line: -1, "producer of ring \(l.ring) could not attach") }
                        return
                    }
                    producers.append(p)
                    if sim.crashed[me] { return }
                    if incarnation > 0 {
                        // A restarted producer resumes, or (a producer that lost
                        // its state) resets the ring.
                        if let (kind, why) = l.producerRestarted(epoch: p.epoch, sequence: p.posted, awaiting: p.awaitingAcknowledgement) {
                            sim.fail(kind, node: me, line: -1, why); return
                        }
                        if decisions.below(4) == 0 {
                            producers[producers.count - 1].reset()
                            if sim.crashed[me] { return }
                            l.reset(to: producers[producers.count - 1].epoch)
                            sim.trace(me, "reset", line: -1, "ring \(l.ring): producer starts epoch \(producers[producers.count - 1].epoch)")
                        }
                    }
                }
                var consumers: [RingConsumer<SimMemory>] = []
                for l in ins {
                    var c = RingConsumer(memory: memory, layout: layouts[l.ring], ackBatch: ackBatch)
                    if sim.crashed[me] { return }
                    if incarnation > 0 {
                        if let (kind, why) = l.consumerRestarted(epoch: c.epoch, sequence: c.consumed) {
                            sim.fail(kind, node: me, line: -1, why); return
                        }
                        if decisions.below(3) == 0 {
                            c.requestReset()
                            sim.trace(me, "reset-request", line: -1, "ring \(l.ring): consumer lost its place")
                        }
                    } else {
                        l.acknowledged = (c.epoch, c.acknowledged)
                    }
                    consumers.append(c)
                }
                if sim.bound != nil {
                    sim.programHash[me] = {
                        var h: UInt64 = 0
                        for p in producers { for w in p.privateState { h = (h ^ w) &* 0x100_0000_01b3 } }
                        for c in consumers { for w in c.privateState { h = (h ^ w) &* 0x100_0000_01b3 } }
                        for l in outs + ins { h = (h ^ l.stateHash) &* 0x100_0000_01b3 }
                        return h
                    }
                }
                // A producer stays until its consumer has everything: an idle
                // producer serves reset requests (SPEC §5.3 "Idle").
                liveness.progressed()   // a (re)started node has its attach behind it
                while !sim.shouldStop(me) && (outs.contains { !$0.allDelivered } || ins.contains { !$0.allDelivered }) {
                    sim.loopHead(me)
                    liveness.check()
                    var progress = false
                    for (k, l) in outs.enumerated() where !l.allPosted && !sim.shouldStop(me) {
                        progress = post(&producers[k], l, sim, me, maxPayload) || progress
                    }
                    for (k, l) in ins.enumerated() where !l.allDelivered && !sim.shouldStop(me) {
                        progress = poll(&consumers[k], l, sim, me, maxPayload) || progress
                    }
                    if !progress {
                        for (k, l) in outs.enumerated() where l.allPosted && !l.allDelivered && !sim.shouldStop(me) {
                            if producers[k].serveResetRequest(), !sim.crashed[me] {
                                l.reset(to: producers[k].epoch)
                                sim.trace(me, "reset", line: -1, "ring \(l.ring): idle producer serves a reset request, epoch \(producers[k].epoch)")
                                progress = true
                            }
                        }
                    }
                    if progress { liveness.progressed() } else { sim.idle(me) }
                }
            }
        }
        sim.run(programs)
        // Everything posted must be delivered, or discarded by a reset; and
        // everything the application meant to post must have been (a ring
        // whose ends wait on each other never posts it: a stall).
        if sim.violation == nil, !sim.pruned, !sim.crashed.contains(true) {
            for l in ledgers {
                let lost = l.lost()
                if !lost.isEmpty && !(sim.config.injectsCorruption && l.skipped > 0) {
                    sim.fail(.lost, node: l.consumer, line: -1, "ring \(l.ring) (\(l.producer)→\(l.consumer)): \(lost.count) posted message(s) never delivered (first: \(lost[0]))")
                    break
                }
            }
            liveness.checkEnd()
        }
        sim.deliveries = ledgers.map { $0.delivered.filter { $0 }.count }.reduce(0, +)
    }

    /// Posts the ledger's next message; true on progress.
    private func post(_ producer: inout RingProducer<SimMemory>, _ l: RingLedger, _ sim: Simulation, _ me: Int, _ maxPayload: Int) -> Bool {
        let index = l.next
        let bytes = l.payload(index, maxPayload: maxPayload)
        let epoch = producer.epoch
        l.indexAt[RingLedger.key(epoch, producer.posted + 1)] = index
        l.posting = index
        l.postingKey = RingLedger.key(epoch, producer.posted + 1)
        let result: PostResult
        do {
            result = try bytes.withUnsafeBytes { try producer.post(kind: 1, requestId: UInt64(index), payload: $0) }
        } catch {
            if !sim.crashed[me] { sim.fail(.protocolError, node: me, line: -1, "ring \(l.ring): post failed: \(error)") }
            return false
        }
        if sim.crashed[me] { return false }   // died mid-post: the restart decides
        l.posting = -1
        if producer.epoch != epoch {
            l.reset(to: producer.epoch)        // served a consumer's reset request
            sim.trace(me, "reset", line: -1, "ring \(l.ring): producer serves a reset request, epoch \(producer.epoch)")
        }
        guard case .posted(let seq) = result else { return false }
        l.lastReturned = (producer.epoch, seq)
        l.next = index + 1
        return true
    }

    /// Polls one inbound ring; true on progress.
    private func poll(_ consumer: inout RingConsumer<SimMemory>, _ l: RingLedger, _ sim: Simulation, _ me: Int, _ maxPayload: Int) -> Bool {
        // A message is delivered when the callback runs: the node may crash
        // after it and before the acknowledgement, or after the
        // acknowledgement and before `poll` returns.
        let epoch = consumer.epoch
        let result = consumer.poll { m in
            if let (kind, why) = l.deliver(index: Int(m.requestId), sequence: m.sequence, epoch: epoch, bytes: m.payload, maxPayload: maxPayload) {
                sim.fail(kind, node: me, line: -1, why)
            }
        }
        if sim.crashed[me] { return false }
        l.acknowledged = (consumer.epoch, consumer.acknowledged)
        switch result {
        case .delivered:
            return true
        case .corrupt(let why):
            if case .checksum(let s) = why, l.wasCutShort(epoch: consumer.epoch, sequence: s, producerCrashed: sim.crashed[l.producer]) {
                // A post its producer's crash cut short: refusing it is right.
                sim.trace(me, "refused-cut-short", line: -1, "ring \(l.ring): \(why)")
                return true
            }
            if sim.config.injectsCorruption { l.skipped += 1; sim.corruptionsCaught += 1 } else {
                sim.fail(why.isChecksum ? .checksum : .protocolError, node: me, line: -1, "ring \(l.ring): \(why)")
            }
            return true
        case .empty:
            return false
        }
    }
}

extension RingCorruption {
    var isChecksum: Bool { if case .checksum = self { return true } else { return false } }
}
