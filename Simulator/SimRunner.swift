import PlenumMemory

/// One run's description: everything a replay token carries (SPEC.md §7.7).
public struct SimRun: Sendable, Equatable {
    public var scenario: Scenario
    public var variant: Scenario.Variant
    public var config: SimConfig
    /// ring-exchange: messages per ring; cluster: operations per client.
    public var messages = 40
    public var slots = 4
    /// Lines per ring slot (a payload spans up to slotLines granules).
    public var slotLines = 3
    /// The consumers' acknowledgement batch (clamped to 1…slots/2).
    public var ackBatch = 2

    public init(scenario: Scenario, variant: Scenario.Variant, config: SimConfig = SimConfig()) {
        self.scenario = scenario
        self.variant = variant
        self.config = config
    }

    /// The mutants a `naive` ring-exchange runs: the ring without software
    /// coherence (no flush after post, no invalidate before poll).
    public static let naiveRingMutants: ProtocolMutants = [.noFlushAfterPost, .noInvalidateBeforePoll]
    /// The mutants a `naive` cluster runs: stores and clients without the
    /// object-memory steps of SPEC §10.8.
    public static let naiveClusterMutants: ProtocolMutants = [.noInvalidateOnAcquire, .sealWithoutFlush]

    /// A run of `scenario` whose workload is drawn from `seed`: node count,
    /// line size, slot count and size, acknowledgement batch, crashes,
    /// one-way reach and a pool, so size- and topology-dependent bugs are
    /// reachable. The token records every choice.
    public static func varied(_ scenario: Scenario, seed: UInt64, mutants: ProtocolMutants = []) -> SimRun {
        var g = SplitMix64(seed: seed &* 0xA24B_AED4_963E_E407 ^ 0x9FB2_1C65_1E98_DF25)
        var r = SimRun(scenario: scenario, variant: .protocol)
        r.config.seed = seed
        r.config.mutants = mutants
        r.config.ordering = seed % 3 == 2 ? .tso : .weak
        let cluster = scenario == .cluster
        r.config.nodes = cluster ? 3 + g.below(2) : [2, 2, 2, 3, 3, 4][g.below(6)]
        r.config.lineSize = [64, 128, 256][g.below(3)]
        r.slots = cluster ? [4, 8][g.below(2)] : [2, 4, 8][g.below(3)]
        r.slotLines = cluster ? max(2, 512 / r.config.lineSize) : 1 + g.below(4)
        r.ackBatch = 1 + g.below(r.slots / 2)
        r.messages = cluster ? 30 + g.below(30) : (r.config.nodes == 2 ? 24 + g.below(24) : 12 + g.below(12))
        r.config.maxSteps = cluster ? 60_000 : 20_000
        if g.below(2) == 0 { r.config.crashPPM = cluster ? 30 + g.below(60) : 100 + g.below(400) }
        if g.below(3) == 0 {
            // One-way reach: each node reaches each other region with p = 1/2;
            // a pair that shares nothing gets the pool.
            let n = r.config.nodes
            r.config.pool = g.below(2) == 0
            var masks = (0..<n).map { i -> UInt32 in
                var m: UInt32 = 1 << UInt32(i)
                for j in 0...n where j != i && g.below(2) == 0 { m |= 1 << UInt32(j) }
                return m
            }
            for (p, c) in RingExchange.pairs(nodes: n, scenario: scenario) where !masks.canPlace(p, c, pool: r.config.pool, nodes: n) {
                r.config.pool = true
                masks[p] |= 1 << UInt32(n)
                masks[c] |= 1 << UInt32(n)
            }
            r.config.reach = masks
        }
        // Drawn last, so the fields above stay what they were for a seed.
        if cluster, g.below(3) == 0 { r.config.linkGarbagePPM = 500 + g.below(2_000) }
        return r
    }

    /// `plenum-sim/2/SCENARIO/VARIANT/seed=S/steps=N/mutants=M/order=O/torn=T/nodes=K/line=L/crash=C/reach=R/pool=P/messages=K/slots=C/slot-lines=X/ack=A`
    public var token: String {
        let reach = config.reach.isEmpty ? "all" : config.reach.map { String($0, radix: 16) }.joined(separator: ".")
        return "plenum-sim/2/\(scenario.rawValue)/\(variant.rawValue)/seed=\(config.seed)/steps=\(config.maxSteps)"
            + "/mutants=\(config.mutants.rawValue)/order=\(config.ordering.rawValue)/torn=\(config.tornWriteBacks ? 1 : 0)"
            + "/nodes=\(config.nodes)/line=\(config.lineSize)/crash=\(config.crashPPM)/reach=\(reach)/pool=\(config.pool ? 1 : 0)"
            + "/messages=\(messages)/slots=\(slots)/slot-lines=\(slotLines)/ack=\(ackBatch)"
            + (config.linkGarbagePPM > 0 ? "/garbage=\(config.linkGarbagePPM)" : "")
    }

    public struct BadToken: Error, CustomStringConvertible {
        public let token: String
        public let why: String
        public var description: String { "invalid replay token \"\(token)\": \(why); copy the token exactly as the simulator printed it" }
    }

    /// Parses a token of format 2, or of format 1 (two nodes, 128-byte
    /// lines, two-line slots, acknowledgement batch 2, no crashes, full reach).
    public init(token: String) throws(BadToken) {
        let parts = token.split(separator: "/").map(String.init)
        guard parts.count >= 4, parts[0] == "plenum-sim", parts[1] == "1" || parts[1] == "2" else {
            throw BadToken(token: token, why: "expected plenum-sim/2/… (or plenum-sim/1/…)")
        }
        let v2 = parts[1] == "2"
        guard v2 ? (18...19).contains(parts.count) : parts.count == 11 else {
            throw BadToken(token: token, why: "expected \(v2 ? "18 (or 19, with garbage=…)" : "11") parts, found \(parts.count)")
        }
        guard let s = Scenario(rawValue: parts[2]) else { throw BadToken(token: token, why: "unknown scenario \(parts[2])") }
        guard let v = Scenario.Variant(rawValue: parts[3]) else { throw BadToken(token: token, why: "unknown variant \(parts[3])") }
        var fields: [String: String] = [:]
        for p in parts[4...] {
            let kv = p.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { throw BadToken(token: token, why: "field \(p) is not key=value") }
            fields[kv[0]] = kv[1]
        }
        func int(_ k: String, _ range: ClosedRange<Int>) throws(BadToken) -> Int {
            guard let text = fields[k], let v = Int(text), range.contains(v) else {
                throw BadToken(token: token, why: "\(k) missing or outside \(range)")
            }
            return v
        }
        var c = SimConfig()
        guard let seedText = fields["seed"], let seed = UInt64(seedText) else { throw BadToken(token: token, why: "seed missing") }
        c.seed = seed
        c.maxSteps = try int("steps", 1...100_000_000)
        c.mutants = ProtocolMutants(rawValue: UInt32(try int("mutants", 0...0xFFFF)))
        guard let o = SimConfig.Ordering(rawValue: fields["order"] ?? "") else { throw BadToken(token: token, why: "order must be weak or tso") }
        c.ordering = o
        c.tornWriteBacks = try int("torn", 0...1) == 1
        self.init(scenario: s, variant: v, config: c)
        messages = try int("messages", 1...1_000_000)
        slots = try int("slots", 2...1024)
        guard slots & (slots - 1) == 0 else { throw BadToken(token: token, why: "slots must be a power of two") }
        guard v2 else { slotLines = 2; return }
        config.nodes = try int("nodes", 2...8)
        config.lineSize = try int("line", 64...256)
        guard [64, 128, 256].contains(config.lineSize) else { throw BadToken(token: token, why: "line must be 64, 128 or 256") }
        config.crashPPM = try int("crash", 0...100_000)
        config.pool = try int("pool", 0...1) == 1
        slotLines = try int("slot-lines", 1...64)
        ackBatch = try int("ack", 1...512)
        if fields["garbage"] != nil {
            guard s == .cluster else { throw BadToken(token: token, why: "garbage is a cluster field") }
            config.linkGarbagePPM = try int("garbage", 1...1_000_000)
        }
        guard let reach = fields["reach"] else { throw BadToken(token: token, why: "reach missing") }
        if reach != "all" {
            let masks = reach.split(separator: ".").map { UInt32($0, radix: 16) }
            guard masks.count == config.nodes, masks.allSatisfy({ $0 != nil }) else {
                throw BadToken(token: token, why: "reach must be \"all\" or one hex mask per node, joined by \".\"")
            }
            config.reach = masks.map { $0! }
            for (p, q) in RingExchange.pairs(nodes: config.nodes, scenario: s) where RingExchange.placement(p, q, config: config) == nil {
                throw BadToken(token: token, why: "nodes \(p) and \(q) share no memory under this reach")
            }
        }
    }

    /// The configuration actually run: a naive ring-exchange adds its mutants.
    var effectiveConfig: SimConfig {
        var c = config
        if variant == .naive, c.mutants.isEmpty {
            if scenario == .ringExchange { c.mutants = Self.naiveRingMutants }
            if scenario == .cluster { c.mutants = Self.naiveClusterMutants }
        }
        return c
    }
}

extension [UInt32] {
    /// Whether the ring p→c has a region both reach (SPEC §10.3 placement).
    func canPlace(_ p: Int, _ c: Int, pool: Bool, nodes n: Int) -> Bool {
        var config = SimConfig()
        config.nodes = n
        config.reach = self
        config.pool = pool
        return RingExchange.placement(p, c, config: config) != nil
    }
}

/// What a run produced.
public struct SimOutcome: Sendable {
    public var run: SimRun
    public var violation: Violation?
    public var steps: Int
    public var corruptionsCaught: Int
    public var crashes: Int
    public var restarts: Int
    public var scribbles = 0
    public var repairs = 0
    /// Messages (ring-exchange) or checked reads (cluster) in the run.
    public var deliveries: Int
    public var trace: [String]
    public var token: String { run.token }
}

public enum SimRunner {
    /// Runs once. With `tracing`, the outcome carries the full trace; the
    /// same run always yields the same trace, byte for byte.
    public static func run(_ r: SimRun, tracing: Bool = false) -> SimOutcome {
        let sim = Simulation(config: r.effectiveConfig, tracing: tracing)
        r.scenario.run(sim, run: r)
        return SimOutcome(run: r, violation: sim.violation, steps: sim.step, corruptionsCaught: sim.corruptionsCaught,
                          crashes: sim.crashCount, restarts: sim.restartCount, scribbles: sim.scribbleCount, repairs: sim.repairCount,
                          deliveries: sim.deliveries, trace: sim.traceLines)
    }

    /// Runs seeds `first…` until a violation or `budget` runs.
    public static func hunt(_ base: SimRun, firstSeed: UInt64 = 1, budget: Int) -> (outcome: SimOutcome, runs: Int) {
        var last: SimOutcome?
        for i in 0..<budget {
            var r = base
            r.config.seed = firstSeed &+ UInt64(i)
            let o = run(r)
            if o.violation != nil { return (o, i + 1) }
            last = o
        }
        return (last ?? run(base), budget)
    }

    /// Renders a trace with its header, as `plenum sim replay` prints it.
    public static func render(_ o: SimOutcome) -> String {
        var text = "# replay \(o.token)\n# step\tnode\top\tline\tdetail\tcache (S clean, D dirty, - absent)\n"
        for l in o.trace { text += l + "\n" }
        text += o.violation.map { "# violation: \($0)\n" } ?? "# no violation in \(o.steps) steps\n"
        return text
    }
}

/// Mutant hunting (SPEC.md §7.4): each mutant must be caught within the
/// seed budget. Ring mutants run `ring-exchange`, store mutants `cluster`,
/// each seed with its own workload (`SimRun.varied`).
public enum MutantHunt {
    public struct Row: Sendable {
        public var name: String
        public var killed: Bool
        /// The first killing seed (or the last tried).
        public var seed: UInt64
        public var steps: Int
        public var runs: Int
        /// With `rates`: seeds of the budget that killed it.
        public var kills: Int
        public var violation: Violation?
        public var token: String
    }

    public static func scenario(for mutant: ProtocolMutants) -> Scenario {
        ProtocolMutants.store.contains { $0.mutant == mutant } ? .cluster : .ringExchange
    }

    /// Hunts each mutant (all, or those named). With `rates`, every seed of
    /// the budget runs and `kills` counts the killing ones.
    public static func run(budget: Int = 200, firstSeed: UInt64 = 1, rates: Bool = false, only: [String] = [],
                           progress: ((Row) -> Void)? = nil) -> [Row] {
        ProtocolMutants.all.filter { only.isEmpty || only.contains($0.name) }.map { (name, mutant) in
            var row = Row(name: name, killed: false, seed: firstSeed, steps: 0, runs: 0, kills: 0, violation: nil, token: "")
            for i in 0..<budget {
                let r = SimRun.varied(scenario(for: mutant), seed: firstSeed &+ UInt64(i), mutants: mutant)
                let o = SimRunner.run(r)
                row.runs += 1
                if o.violation != nil {
                    row.kills += 1
                    if !row.killed { row.killed = true; row.seed = r.config.seed; row.steps = o.steps; row.violation = o.violation; row.token = o.token }
                    if !rates { break }
                } else if !row.killed {
                    row.seed = r.config.seed; row.steps = o.steps; row.token = o.token
                }
            }
            progress?(row)
            return row
        }
    }
}
