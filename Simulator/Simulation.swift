import PlenumMemory

/// One deterministic run: the memory model, the nodes as coroutines, the
/// schedule, the trace and the checkers (SPEC.md §7.2).
///
/// ```
///  scheduler (thread stack) ──switch──▶ node 0 coroutine ──op──▶ opPoint ─┐
///        ▲                                  ▲                             │ preempt:
///        └── all nodes finished ◀───────────┴──switch── node 1 ◀─────────┘ switch
/// ```
/// Every memory operation of every node passes `opPoint` first, where the
/// schedule may preempt the node, drain a store buffer, evict or prefetch a
/// line, land a torn write-back, pause or crash a node.
public final class Simulation {
    public let config: SimConfig
    var rng: SplitMix64
    var chooser: Chooser
    var mem: NonCoherentMemory!
    public internal(set) var step = 0
    public internal(set) var violation: Violation?
    /// Corruption the ring detected and refused in a run that injects it.
    public internal(set) var corruptionsCaught = 0
    /// Messages delivered (ring-exchange) or object reads checked (cluster).
    public internal(set) var deliveries = 0
    var stopping = false
    /// While true (layout and formatting before the nodes start) operations
    /// run in program order with no schedule points and no injected events.
    var settingUp = false

    // scheduler
    private var mainContext: OpaquePointer?
    private var coroutines: [Coroutine?] = []
    private(set) var current = 0
    private var finished: [Bool] = []
    private var pausedUntil: [Int] = []
    var crashed: [Bool] = []
    /// Whether crashed nodes restart (the scenario supports it).
    var restarts = false
    var restartAt: [Int] = []
    /// Lives a node may have (restarts + 1), when `restarts`.
    var maxLives = Int.max
    /// Told of every crash, as it happens (the cluster's checker).
    var onCrash: ((Int) -> Void)?
    public internal(set) var crashCount = 0
    public internal(set) var restartCount = 0
    /// Link garbage written and descriptors repaired (cluster, §7.6).
    public internal(set) var scribbleCount = 0
    public internal(set) var repairCount = 0

    // explore
    let bound: ExploreBound?
    var preemptionsUsed = 0
    var eventsUsed = 0
    /// Per node, the lines an exploration may prefetch into it: the lines
    /// that node reads (set by the scenario).
    var prefetchable: [[Int]] = []
    var states: Set<UInt64>?
    /// State hashing (SPEC §7.5): fingerprints of states whose futures were
    /// explored already, shared by every schedule of one exploration.
    var visited: Set<UInt64>?
    /// This schedule reached a visited state and was cut short.
    public internal(set) var pruned = false
    /// Per node: a hash of the operations (and values read) since the
    /// program's last `loopHead`, which with the program's private state
    /// pins where the node is in its code.
    var opHash: [UInt64] = []
    /// Per node: the program's private state at its loop head, hashed
    /// (called at the loop head only, when no access to it is under way).
    var programHash: [(() -> UInt64)?] = []
    var headHash: [UInt64] = []

    // trace
    let tracing: Bool
    public private(set) var traceLines: [String] = []

    init(config: SimConfig, script: [Int]? = nil, bound: ExploreBound? = nil, tracing: Bool = false) {
        self.config = config
        self.rng = SplitMix64(seed: config.seed)
        self.chooser = Chooser(rng: SplitMix64(seed: config.seed ^ 0xC0FFEE), script: script)
        self.bound = bound
        self.tracing = tracing
        if bound != nil { states = [] }
    }

    /// Lays out the address space: regions with their owners (nil = pool).
    func setUpMemory(regions: [(size: Int, owner: Int?)]) {
        mem = NonCoherentMemory(sim: self, nodes: config.nodes, line: config.lineSize, regions: regions)
        finished = [Bool](repeating: false, count: config.nodes)
        pausedUntil = [Int](repeating: 0, count: config.nodes)
        crashed = [Bool](repeating: false, count: config.nodes)
        restartAt = [Int](repeating: 0, count: config.nodes)
        opHash = [UInt64](repeating: 0, count: config.nodes)
        programHash = [(() -> UInt64)?](repeating: nil, count: config.nodes)
        headHash = [UInt64](repeating: 0, count: config.nodes)
        for n in 0..<config.nodes {
            for r in regions.indices where !config.reaches(n, region: r) && regions[r].owner != n { mem.reach[n][r] = false }
        }
    }

    /// The seam for node `n`.
    func memory(node n: Int) -> SimMemory { SimMemory(sim: self, node: n) }

    /// Should node n's program wind down (budget spent, violation, crash)?
    func shouldStop(_ n: Int) -> Bool { stopping || crashed[n] }

    // MARK: running

    /// Runs `body` as node n before the nodes start: formatting, layout.
    func setUp(node n: Int, _ body: (SimMemory) throws -> Void) rethrows {
        settingUp = true
        defer { settingUp = false }
        try body(memory(node: n))
    }

    /// Runs one program per node until all return. Programs must poll
    /// `shouldStop` in their loops and call `idle` when they wait.
    func run(_ programs: [(SimMemory) -> Void]) {
        run(programs.map { p in { m, _ in p(m) } })
    }

    /// Node n dies now (an injected crash, or a cluster node its peers
    /// fenced while it ran): cache and store buffer lost; with `restarts` it
    /// comes back 200…2,200 operations later, a new incarnation.
    func crash(_ victim: Int, _ why: String) {
        guard !crashed[victim], !finished[victim] else { return }
        crashed[victim] = true
        crashCount += 1
        restartAt[victim] = step + 200 + rng.below(2_000)
        mem.crash(victim)
        trace(victim, "crash", line: -1, why)
        onCrash?(victim)
    }

    /// Runs one program per node, each given its incarnation (0 first). With
    /// `restarts`, a crashed node's program returns (it sees `shouldStop`),
    /// the node stays dead for a while, then runs its program again with a
    /// cold cache: a restart (SPEC §7.2).
    func run(_ programs: [(SimMemory, Int) -> Void]) {
        precondition(programs.count == config.nodes)
        mainContext = Coroutine.main()
        coroutines = programs.enumerated().map { (n, program) in
            Coroutine { [unowned self] in
                var incarnation = 0
                while true {
                    program(self.memory(node: n), incarnation)
                    guard self.crashed[n], self.restarts, !self.stopping, incarnation + 1 < self.maxLives else { break }
                    while self.step < self.restartAt[n] && !self.stopping { self.opPoint(n); self.idle(n) }
                    guard !self.stopping else { break }
                    self.crashed[n] = false
                    self.mem.nodes[n].crashed = false
                    incarnation += 1
                    self.restartCount += 1
                    self.trace(n, "restart", line: -1, "incarnation \(incarnation), cold cache")
                }
                self.finished[n] = true
                // Returning (not switching away from inside the body) unwinds
                // the program's frames, so what they held is released; a
                // switch from here leaked every run's world (issue 24: the
                // fuzz grew by ~100 MB/s until the machine swapped).
                self.leave(n)
            }
        }
        let first = chooser.pick(config.nodes)
        current = first
        Coroutine.switchTo(from: mainContext!, to: coroutines[first]!.handle)
        coroutines = []
        plenumCoroFree(mainContext)
        mainContext = nil
    }

    private func runnable(except n: Int) -> [Int] {
        (0..<config.nodes).filter { $0 != n && !finished[$0] && (pausedUntil[$0] <= step || stopping) }
    }

    private func switchTo(_ m: Int) {
        let from = current
        guard m != from else { return }
        current = m
        trace(from, "switch", line: -1, "→ node \(m)")
        Coroutine.switchTo(from: coroutines[from]!.handle, to: coroutines[m]!.handle)
    }

    /// A finished node hands over for good: where its coroutine goes once
    /// its body has returned.
    private func leave(_ n: Int) {
        let others = (0..<config.nodes).filter { !finished[$0] }
        if others.isEmpty {
            coroutines[n]!.exit(to: mainContext!)
        } else {
            let m = others[chooser.pick(others.count)]
            current = m
            coroutines[n]!.exit(to: coroutines[m]!.handle)
        }
    }

    /// A node waits (empty ring, full ring): let another node run. Not a
    /// preemption, so it does not count against an exploration bound.
    func idle(_ n: Int) {
        let others = runnable(except: n)
        guard !others.isEmpty else {
            // Alone, waiting still costs a step: a lone node that polls
            // without touching memory ends at the run's step bound instead
            // of spinning forever (issue 24, seed 22052).
            step += 1
            if step >= stepBudget { stopping = true }
            return
        }
        // Exploring, a waiting node hands over round-robin (not a branch: the
        // preemptions enumerate who runs when): a choice of 0 every time would
        // starve a third node forever.
        if bound != nil { switchTo(others.first { $0 > n } ?? others[0]); return }
        switchTo(others[chooser.pick(others.count)])
    }

    /// Every run ends by this many operations (the fault phase, then as
    /// many quiet ones): what state a run holds grows with its operations,
    /// so this bounds its memory too. A run that reaches it with work left
    /// is reported `stalled`, "step budget exhausted" (§7.3 "Liveness").
    var stepBudget: Int { 2 * config.maxSteps }
    var budgetExhausted: Bool { step >= stepBudget }

    /// Called before every memory operation of node n.
    func opPoint(_ n: Int) {
        if settingUp { return }
        step += 1
        if violation != nil || step >= stepBudget { stopping = true; return }
        if let bound { explorePoint(n, bound); return }
        // After maxSteps the run quiesces: no more injected events or
        // preemptions, only the programs' own waiting, for up to maxSteps more.
        if step >= config.maxSteps { return }
        if config.drainPPM > 0, rng.chance(ppm: config.drainPPM) {
            let m = rng.below(config.nodes)
            let e = mem.eligible(m)
            if !e.isEmpty, !crashed[m] { mem.drain(m, e[rng.below(e.count)]) }
        }
        if rng.chance(ppm: config.evictPPM) {
            let m = rng.below(config.nodes)
            let lines = mem.cachedLines(m)
            if !lines.isEmpty { mem.dropLine(m, lines[rng.below(lines.count)], reason: "evict") }
        }
        if rng.chance(ppm: config.prefetchPPM) {
            mem.prefetch(rng.below(config.nodes), rng.below(mem.size / mem.line))
        }
        if !mem.tornRemainder.isEmpty, rng.chance(ppm: 200_000) { mem.completeTorn() }
        if config.crashPPM > 0, !stopping, rng.chance(ppm: config.crashPPM) {
            let victim = rng.below(config.nodes)
            crash(victim, "cache and store buffer lost")
        }
        if config.pausePPM > 0, rng.chance(ppm: config.pausePPM) {
            let m = rng.below(config.nodes)
            pausedUntil[m] = step + 50 + rng.below(500)
            trace(m, "pause", line: -1, "until step \(pausedUntil[m])")
        }
        if !stopping, rng.chance(ppm: config.preemptPPM) {
            let others = runnable(except: n)
            if !others.isEmpty { switchTo(others[rng.below(others.count)]) }
        }
    }

    /// Exploration: every option at this point is a branch of the script.
    private func explorePoint(_ n: Int, _ b: ExploreBound) {
        if stopping { return }
        let fp = mem.fingerprint(extra: explorationState(n))
        states?.insert(fp)
        // Only past the replayed prefix of the script: the prefix's states
        // were visited by the schedule this one branches from.
        if visited != nil, chooser.taken.count >= (chooser.script?.count ?? 0), !visited!.insert(fp).inserted {
            pruned = true
            stopping = true
            chooser.frozen = true
            return
        }
        let others = preemptionsUsed < b.preemptions ? runnable(except: n) : []
        // Cache events that can matter: evicting a dirty line (an early,
        // whole-line write-back) and prefetching a line the node reads (an
        // early, possibly stale copy). A clean eviction only makes a later
        // read fresher, so it is not a branch.
        var events: [(node: Int, line: Int, evict: Bool)] = []
        if eventsUsed < b.cacheEvents {
            for m in 0..<config.nodes where !crashed[m] {
                let node = mem.nodes[m]
                for l in node.present.indices where node.present[l] && node.dirty[l] { events.append((m, l, true)) }
                if m < prefetchable.count {
                    // A line the node reads again: prefetched early (possibly
                    // stale), or evicted clean (the next read fetches whatever
                    // memory holds then, which may be newer than what the
                    // protocol has made safe to read).
                    for l in prefetchable[m] where !(node.present[l] && node.dirty[l]) { events.append((m, l, node.present[l])) }
                }
            }
        }
        let c = chooser.pick(1 + others.count + events.count)
        if c == 0 { return }
        if c <= others.count {
            preemptionsUsed += 1
            switchTo(others[c - 1])
            return
        }
        let e = events[c - 1 - others.count]
        eventsUsed += 1
        if e.evict { mem.dropLine(e.node, e.line, reason: "evict") } else { mem.prefetch(e.node, e.line) }
    }

    /// Everything that decides a node's future besides memory, caches and
    /// buffers: where each program is (private state at its loop head, the
    /// operations and values since) and the budget left.
    private func explorationState(_ n: Int) -> UInt64 {
        var h: UInt64 = 0x84222325 &+ UInt64(n) &+ UInt64(preemptionsUsed) << 8 &+ UInt64(eventsUsed) << 16
        for m in 0..<config.nodes {
            h = (h ^ opHash[m]) &* 0x100_0000_01b3
            h = (h ^ headHash[m]) &* 0x100_0000_01b3
            h = (h ^ (finished[m] ? 1 : 0)) &* 0x100_0000_01b3
        }
        for row in mem.clocks { for c in row { h = (h ^ UInt64(c)) &* 0x100_0000_01b3 } }
        return h
    }

    /// A program reached the head of its loop: its state is its private
    /// variables (`programHash`) again.
    func loopHead(_ n: Int) {
        guard bound != nil else { return }
        opHash[n] = 0
        headHash[n] = programHash[n]?() ?? 0
    }

    /// Exploration: an operation of node n and the value it saw.
    @inline(__always) func noteOp(_ n: Int, _ kind: UInt64, _ offset: Int, _ value: UInt64) {
        guard bound != nil else { return }
        var h = opHash[n]
        h = (h ^ kind) &* 0x100_0000_01b3
        h = (h ^ UInt64(bitPattern: Int64(offset))) &* 0x100_0000_01b3
        h = (h ^ value) &* 0x100_0000_01b3
        opHash[n] = h
    }

    /// Drains node n's whole store buffer in an order the model allows, with
    /// a schedule point between entries; then its stores are published truth.
    ///
    /// Between two entries the node is preempted far more often than at an
    /// ordinary operation (`fencePreemptPPM`): a fence is where a store
    /// that drained early (a commit word before its payload's flush) is
    /// visible alone, and ordering bugs show only if another node looks then.
    func fence(_ n: Int) {
        while !mem.nodes[n].queue.isEmpty {
            let e = mem.eligible(n)
            mem.drain(n, settingUp ? e[0] : e[chooser.pick(e.count)])
            if !mem.nodes[n].queue.isEmpty {
                opPoint(n)
                if bound == nil, !settingUp, !stopping, step < config.maxSteps, rng.chance(ppm: Self.fencePreemptPPM) {
                    let others = runnable(except: n)
                    if !others.isEmpty { switchTo(others[rng.below(others.count)]) }
                }
            }
        }
        mem.commit(n)
    }

    /// Chance of a preemption between two drained entries of a fence.
    static let fencePreemptPPM = 400_000

    // MARK: checkers

    func fail(_ kind: Violation.Kind, node: Int, line: Int, _ detail: String) {
        guard violation == nil else { return }
        violation = Violation(kind: kind, step: step, node: node, line: line, detail: detail)
        trace(node, "VIOLATION", line: line, "\(kind.rawValue): \(detail)")
        stopping = true
    }

    func staleRead(node n: Int, word w: Int, tag: UInt32, truth: UInt32, at committedAt: Int) {
        fail(.staleRead, node: n, line: w * 8 / mem.line,
             "node \(n) read word @\(w * 8) written by store #\(tag), but store #\(truth) to it was published at step \(committedAt) and node \(n) already knew of it")
    }

    // MARK: trace

    @inline(__always)
    func trace(_ n: Int, _ op: String, line l: Int, _ detail: @autoclosure () -> String) {
        guard tracing else { return }
        record(n, op, line: l, detail())
    }

    private func record(_ n: Int, _ op: String, line l: Int, _ detail: String) {
        var state = ""
        if l >= 0, mem != nil, l < mem.nodes[0].present.count {
            state = mem.nodes.indices.map { m in
                let node = mem.nodes[m]
                return "n\(m):" + (node.present[l] ? (node.dirty[l] ? "D" : "S") : "-")
            }.joined(separator: " ")
        }
        let lineText = l >= 0 ? "line \(l)" : "-"
        traceLines.append("\(step)\tnode \(n)\t\(op)\t\(lineText)\t\(detail)\t\(state)")
    }
}

import CPlenumShim
private func plenumCoroFree(_ p: OpaquePointer?) { plenum_coro_destroy(p) }
