import PlenumMemory

/// The named scenarios (SPEC.md §7.6). Each has a `naive` variant that skips
/// one step of the protocol — the simulator must catch it — and a `protocol`
/// variant that must run clean. `ring-exchange` runs the production ring.
public enum Scenario: String, CaseIterable, Sendable {
    case staleStateWord = "stale-state-word"
    case unflushedBorrowerWrite = "unflushed-borrower-write"
    case staleLenderCache = "stale-lender-cache"
    case flushBeforeStore = "flush-before-store"
    case falseSharingClobber = "false-sharing-clobber"
    case reusedAllocationPrefetch = "reused-allocation-prefetch"
    case ringExchange = "ring-exchange"
    case cluster

    public enum Variant: String, Sendable, CaseIterable { case naive, `protocol` }

    /// Memory operations with injected faults, by default: the primitive
    /// scenarios are short, so their fault phase is too.
    public var defaultSteps: Int {
        switch self {
        case .ringExchange: return 20_000
        case .cluster: return 60_000
        default: return 2_000
        }
    }

    public var summary: String {
        switch self {
        case .staleStateWord: return "thesis §3.7.1: a node polls a peer's state word; naive: without invalidating"
        case .unflushedBorrowerWrite: return "thesis §3.9.2: a borrower writes into the lender's region; naive: no flush, the write stays in its cache"
        case .staleLenderCache: return "thesis §3.9.3: the lender reads its own line after a borrower wrote it through the link; naive: from its stale cache"
        case .flushBeforeStore: return "thesis §3.5.3: two stores to one line, then a flush naming the first; naive: no fence, the flush passes the second store"
        case .falseSharingClobber: return "producer and consumer counters; naive: in one line, so a whole-line write-back erases the other side's update"
        case .reusedAllocationPrefetch: return "a reader keeps (or prefetches) lines of a freed object; naive: reads the reused memory without invalidating first"
        case .ringExchange: return "the production ring on N nodes, many messages each way, random faults, crashes and restarts (naive = a protocol mutant)"
        case .cluster: return "N production store and cluster cores over production rings, clients creating, reading, deleting objects across nodes, crashes (naive = store mutants)"
        }
    }

    /// Runs the scenario on a fresh simulation.
    func run(_ sim: Simulation, run r: SimRun) {
        let naive = r.variant == .naive
        switch self {
        case .ringExchange: RingExchange(messages: r.messages, slots: r.slots, slotLines: r.slotLines, ackBatch: r.ackBatch).run(sim)
        case .cluster: ClusterExchange(operations: r.messages, slots: r.slots, slotLines: r.slotLines, ackBatch: r.ackBatch).run(sim)
        case .staleStateWord: StaleStateWord(naive: naive).run(sim)
        case .unflushedBorrowerWrite: BorrowerWrite(naive: naive).run(sim)
        case .staleLenderCache: LenderCache(naive: naive).run(sim)
        case .flushBeforeStore: FlushBeforeStore(naive: naive).run(sim)
        case .falseSharingClobber: FalseSharing(naive: naive).run(sim)
        case .reusedAllocationPrefetch: ReusedAllocation(naive: naive).run(sim)
        }
    }
}

// MARK: - building blocks (the protocol's publish / observe, SPEC §2)

extension SimMemory {
    /// Publish one word: store; fence; flush; fence.
    func publish(_ value: UInt64, at offset: Int) {
        store64(value, at: offset, ordering: .releasing)
        fence(.store)
        flush(at: offset, count: 8)
        fence(.store)
    }

    /// Observe one word: invalidate; fence; load.
    func observe(_ offset: Int) -> UInt64 {
        invalidate(at: offset, count: 8)
        fence(.full)
        return load64(at: offset, ordering: .acquiring)
    }

    /// Waits (idling) until the word at `offset` is at least `value`.
    func await(_ offset: Int, atLeast value: UInt64, _ sim: Simulation) -> Bool {
        while !sim.shouldStop(node) {
            if observe(offset) >= value { return true }
            sim.idle(node)
        }
        return false
    }
}

/// Two nodes, node 0 owns region 0 and node 1 region 1; `lines` lines each.
private func twoRegions(_ sim: Simulation, lines: Int) -> (r0: Int, r1: Int) {
    let bytes = lines * sim.config.lineSize
    sim.setUpMemory(regions: [(bytes, 0), (bytes, 1)])
    return (0, bytes)
}

/// §3.7.1 — two nodes step through rounds in lockstep: each publishes its
/// state word and polls the other's until it matches (the thesis' state
/// synchronisation). Naive: polling without invalidating, which only random
/// evictions rescue; after the fault phase the run must still finish.
struct StaleStateWord {
    let naive: Bool
    static let rounds: UInt64 = 50
    func run(_ sim: Simulation) {
        let (r0, r1) = twoRegions(sim, lines: 4)
        let state = [r0, r1]
        sim.mem.lineWriter[r0 / sim.config.lineSize] = 0
        sim.mem.lineWriter[r1 / sim.config.lineSize] = 1
        var reached = [UInt64](repeating: 0, count: 2)
        let program: (Int) -> (SimMemory) -> Void = { n in
            { m in
                for round in 1...Self.rounds {
                    m.publish(round, at: state[n])
                    var peer: UInt64 = 0
                    while peer < round && !sim.shouldStop(n) {
                        peer = naive ? m.load64(at: state[1 - n], ordering: .acquiring) : m.observe(state[1 - n])
                        if peer < round { sim.idle(n) }
                    }
                    if peer < round { return }
                    reached[n] = round
                }
            }
        }
        sim.run([program(0), program(1)])
        // Liveness: with faults quiesced, both nodes must reach the last round.
        if sim.violation == nil, !sim.crashed.contains(true), reached.min()! < Self.rounds {
            sim.fail(.lost, node: reached[0] < reached[1] ? 0 : 1, line: -1,
                     "state synchronisation stalled at round \(reached.min()!) of \(Self.rounds): a poller keeps reading its stale cached copy")
        }
    }
}

/// §3.9.2 — node 1 (borrower) writes a datum into node 0's region, then rings
/// a doorbell; node 0 reads the datum after the doorbell.
struct BorrowerWrite {
    let naive: Bool
    func run(_ sim: Simulation) {
        let line = sim.config.lineSize
        let (r0, _) = twoRegions(sim, lines: 4)
        let datum = r0, bell = r0 + line
        sim.mem.lineWriter[datum / line] = 1
        sim.mem.lineWriter[bell / line] = 1
        sim.run([
            { m in
                for round in 1...8 {
                    guard m.await(bell, atLeast: UInt64(round), sim) else { return }
                    m.invalidate(at: datum, count: 8)   // the lender reads correctly in both variants
                    m.fence(.full)
                    _ = m.read(at: datum, count: 8) { $0.load(as: UInt64.self) }  // decides on it
                }
            },
            { m in
                for round in 1...8 where !sim.shouldStop(1) {
                    m.store64(UInt64(1000 + round), at: datum, ordering: .relaxed)
                    if naive { m.fence(.store) } else {
                        m.fence(.store); m.flush(at: datum, count: 8); m.fence(.store)
                    }
                    m.publish(UInt64(round), at: bell)
                    sim.idle(1)
                }
            },
        ])
    }
}

/// §3.9.3 — node 0 (lender) has its own line cached; node 1 writes it
/// through the link (correctly flushed) and rings a doorbell; node 0 reads.
struct LenderCache {
    let naive: Bool
    func run(_ sim: Simulation) {
        let line = sim.config.lineSize
        let (r0, r1) = twoRegions(sim, lines: 4)
        let datum = r0, ack = r0 + line, bell = r1
        sim.mem.lineWriter[datum / line] = 1
        sim.mem.lineWriter[ack / line] = 0
        sim.mem.lineWriter[bell / line] = 1
        sim.run([
            { m in
                _ = m.read(at: datum, count: 8) { $0.load(as: UInt64.self) } // the lender caches its own line
                for round in 1...8 {
                    guard m.await(bell, atLeast: UInt64(round), sim) else { return }
                    if !naive { m.invalidate(at: datum, count: 8); m.fence(.full) }
                    _ = m.read(at: datum, count: 8) { $0.load(as: UInt64.self) }
                    m.publish(UInt64(round), at: ack)
                }
            },
            { m in
                for round in 1...8 where !sim.shouldStop(1) {
                    if round > 1 { guard m.await(ack, atLeast: UInt64(round - 1), sim) else { return } }
                    m.publish(UInt64(500 + round), at: datum)
                    m.publish(UInt64(round), at: bell)
                }
            },
        ])
    }
}

/// §3.5.3 — node 0 (a borrower) stores two words of one line in node 1's
/// region, then flushes naming the first; node 1 reads both after a doorbell.
struct FlushBeforeStore {
    let naive: Bool
    func run(_ sim: Simulation) {
        let line = sim.config.lineSize
        let (_, r1) = twoRegions(sim, lines: 4)
        let data = r1, bell = r1 + line
        sim.mem.lineWriter[data / line] = 0
        sim.mem.lineWriter[bell / line] = 0
        sim.run([
            { m in
                for round in 1...30 where !sim.shouldStop(0) {
                    m.store64(UInt64(round), at: data, ordering: .relaxed)
                    m.store64(UInt64(round), at: data + 8, ordering: .relaxed)
                    if !naive { m.fence(.store) }
                    m.flush(at: data, count: 8)   // names the first word only
                    m.fence(.store)
                    m.publish(UInt64(round), at: bell)
                    sim.idle(0)
                }
            },
            { m in
                for round in 1...30 {
                    guard m.await(bell, atLeast: UInt64(round), sim) else { return }
                    m.invalidate(at: data, count: 16)
                    m.fence(.full)
                    _ = m.read(at: data, count: 16) { $0.load(fromByteOffset: 8, as: UInt64.self) }
                }
            },
        ])
    }
}

/// Two counters, one per node: naive in one line, protocol in two.
struct FalseSharing {
    let naive: Bool
    func run(_ sim: Simulation) {
        let line = sim.config.lineSize
        let (r0, _) = twoRegions(sim, lines: 4)
        let words = [r0, naive ? r0 + 8 : r0 + line]
        if !naive {
            sim.mem.lineWriter[words[0] / line] = 0
            sim.mem.lineWriter[words[1] / line] = 1
        }
        let program: (Int) -> (SimMemory) -> Void = { n in
            { m in
                for v in 1...40 where !sim.shouldStop(n) {
                    m.publish(UInt64(v), at: words[n])
                    _ = m.observe(words[1 - n])   // read the other side's counter
                    sim.idle(n)
                }
            }
        }
        sim.run([program(0), program(1)])
    }
}

/// Node 0 owns an object range, publishes object A, node 1 reads it, node 0
/// frees and reuses the range for object B; node 1 reads B.
struct ReusedAllocation {
    let naive: Bool
    func run(_ sim: Simulation) {
        let line = sim.config.lineSize
        let (r0, r1) = twoRegions(sim, lines: 6)
        let object = r0, objectBytes = 2 * line, ready = r0 + 4 * line, released = r1
        for l in (object / line)...(ready / line) { sim.mem.lineWriter[l] = 0 }
        sim.mem.lineWriter[released / line] = 1
        sim.run([
            { m in
                for gen in 1...6 where !sim.shouldStop(0) {
                    if gen > 1 { guard m.await(released, atLeast: UInt64(gen - 1), sim) else { return } }
                    // (Re)use the range: write the new object, publish it.
                    m.write(at: object, count: objectBytes) { b in
                        for i in stride(from: 0, to: objectBytes, by: 8) { b.storeBytes(of: UInt64(gen * 100 + i), toByteOffset: i, as: UInt64.self) }
                    }
                    m.fence(.store)
                    m.flush(at: object, count: objectBytes)
                    m.fence(.store)
                    m.publish(UInt64(gen), at: ready)
                }
            },
            { m in
                for gen in 1...6 {
                    guard m.await(ready, atLeast: UInt64(gen), sim) else { return }
                    if !naive { m.invalidate(at: object, count: objectBytes); m.fence(.full) }
                    _ = m.read(at: object, count: objectBytes) { $0.load(as: UInt64.self) }
                    m.publish(UInt64(gen), at: released)
                }
            },
        ])
    }
}
