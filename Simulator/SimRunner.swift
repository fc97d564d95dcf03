import PlenumMemory

/// One run's description: everything a replay token carries (SPEC.md §7.7).
public struct SimRun: Sendable, Equatable {
    public var scenario: Scenario
    public var variant: Scenario.Variant
    public var config: SimConfig
    public var messages = 40
    public var slots = 4

    public init(scenario: Scenario, variant: Scenario.Variant, config: SimConfig = SimConfig()) {
        self.scenario = scenario
        self.variant = variant
        self.config = config
    }

    /// The mutants a `naive` ring-exchange runs: the ring without software
    /// coherence (no flush after post, no invalidate before poll).
    public static let naiveRingMutants: ProtocolMutants = [.noFlushAfterPost, .noInvalidateBeforePoll]

    /// `plenum-sim/1/SCENARIO/VARIANT/seed=S/steps=N/mutants=M/order=O/torn=T/messages=K/slots=C`
    public var token: String {
        "plenum-sim/1/\(scenario.rawValue)/\(variant.rawValue)/seed=\(config.seed)/steps=\(config.maxSteps)"
            + "/mutants=\(config.mutants.rawValue)/order=\(config.ordering.rawValue)/torn=\(config.tornWriteBacks ? 1 : 0)"
            + "/messages=\(messages)/slots=\(slots)"
    }

    public struct BadToken: Error, CustomStringConvertible {
        public let token: String
        public let why: String
        public var description: String { "invalid replay token \"\(token)\": \(why); copy the token exactly as the simulator printed it" }
    }

    public init(token: String) throws(BadToken) {
        let parts = token.split(separator: "/").map(String.init)
        guard parts.count == 11, parts[0] == "plenum-sim", parts[1] == "1" else {
            throw BadToken(token: token, why: "expected plenum-sim/1/… with 11 parts")
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
        c.mutants = ProtocolMutants(rawValue: UInt8(try int("mutants", 0...15)))
        guard let o = SimConfig.Ordering(rawValue: fields["order"] ?? "") else { throw BadToken(token: token, why: "order must be weak or tso") }
        c.ordering = o
        c.tornWriteBacks = try int("torn", 0...1) == 1
        self.init(scenario: s, variant: v, config: c)
        messages = try int("messages", 1...1_000_000)
        slots = try int("slots", 2...1024)
        guard slots & (slots - 1) == 0 else { throw BadToken(token: token, why: "slots must be a power of two") }
    }

    /// The configuration actually run: a naive ring-exchange adds its mutants.
    var effectiveConfig: SimConfig {
        var c = config
        if scenario == .ringExchange, variant == .naive, c.mutants.isEmpty { c.mutants = Self.naiveRingMutants }
        return c
    }
}

/// What a run produced.
public struct SimOutcome: Sendable {
    public var run: SimRun
    public var violation: Violation?
    public var steps: Int
    public var corruptionsCaught: Int
    public var trace: [String]
    public var token: String { run.token }
}

public enum SimRunner {
    /// Runs once. With `tracing`, the outcome carries the full trace; the
    /// same run always yields the same trace, byte for byte.
    public static func run(_ r: SimRun, tracing: Bool = false) -> SimOutcome {
        let sim = Simulation(config: r.effectiveConfig, tracing: tracing)
        r.scenario.run(sim, variant: r.variant, ring: RingExchange(messages: r.messages, slots: r.slots))
        return SimOutcome(run: r, violation: sim.violation, steps: sim.step, corruptionsCaught: sim.corruptionsCaught, trace: sim.traceLines)
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

/// Mutant hunting (SPEC.md §7.4): each mutant must be caught by ring-exchange
/// within the seed budget.
public enum MutantHunt {
    public struct Row: Sendable {
        public var name: String
        public var killed: Bool
        public var seed: UInt64
        public var steps: Int
        public var runs: Int
        public var violation: Violation?
        public var token: String
    }

    public static func run(budget: Int = 200, config: SimConfig = SimConfig()) -> [Row] {
        ProtocolMutants.all.map { (name, mutant) in
            var base = SimRun(scenario: .ringExchange, variant: .protocol, config: config)
            base.config.mutants = mutant
            let (o, runs) = SimRunner.hunt(base, firstSeed: config.seed, budget: budget)
            return Row(name: name, killed: o.violation != nil, seed: o.run.config.seed, steps: o.steps,
                       runs: runs, violation: o.violation, token: o.token)
        }
    }
}
