import PlenumMemory

/// Exhaustive exploration of the production ring (SPEC.md §7.5): every
/// schedule within a bound, by re-execution from the start with a
/// depth-first script of choices, on any number of nodes.
///
/// The bound: at most `preemptions` involuntary switches (switching when a
/// node waits is free), at most `cacheEvents` injected cache events — an
/// eviction of a dirty line, or a prefetch or clean eviction of a line the
/// node reads again — and every order the weak model allows for draining a
/// store buffer at a fence. Store buffers drain only at fences (and when
/// full) in this mode, so stores stay invisible as long as the model permits.
///
/// State hashing: at every schedule point the run's fingerprint (memory,
/// caches, store buffers with their contents, each program's private state
/// and the operations and values since its loop head, the vector clocks,
/// the budget used) is looked up; a state already explored ends the
/// schedule, since its futures were (or are being) explored from the first
/// visit.
public enum Explorer {
    public struct Report: Sendable {
        public var schedules: Int
        public var states: Int
        public var violations: Int
        public var complete: Bool
        public var seconds: Double
        public var firstViolation: Violation?
        public var firstScript: [Int]?
        public var operations: Int
        /// Schedules cut short at a state already explored.
        public var pruned: Int
    }

    /// Explores ring-exchange as `base` describes it (nodes, line size,
    /// slots, slot lines, acknowledgement batch, messages, mutants).
    public static func run(base: SimRun, bound: ExploreBound, stateHashing: Bool = true,
                           maxSchedules: Int = 10_000_000, maxSeconds: Double = 600,
                           progress: ((Report) -> Void)? = nil) -> Report {
        let start = monotonicNanos()
        var report = Report(schedules: 0, states: 0, violations: 0, complete: false, seconds: 0, operations: 0, pruned: 0)
        var seen = Set<UInt64>()
        var visited: Set<UInt64>? = stateHashing ? [] : nil
        var script: [Int]? = []
        var lastProgress = start
        while let s = script {
            var config = base.config
            config.seed = 0
            config.maxSteps = 4_000 // a schedule takes a few hundred operations
            config.crashPPM = 0
            let sim = Simulation(config: config, script: s, bound: bound)
            if stateHashing { sim.states = nil }
            sim.visited = visited
            visited = nil                 // one owner, so inserts do not copy the set
            RingExchange(messages: base.messages, slots: base.slots, slotLines: base.slotLines, ackBatch: base.ackBatch).run(sim)
            visited = sim.visited
            sim.visited = nil
            report.schedules += 1
            report.operations += sim.step
            if sim.pruned { report.pruned += 1 }
            seen.formUnion(sim.states ?? [])
            if let v = sim.violation {
                report.violations += 1
                if report.firstViolation == nil { report.firstViolation = v; report.firstScript = sim.chooser.taken.map(\.choice) }
            }
            script = sim.chooser.nextScript()
            let now = monotonicNanos()
            report.seconds = Double(now - start) / 1e9
            report.states = visited?.count ?? seen.count
            if report.schedules >= maxSchedules || report.seconds > maxSeconds { return report }
            if let progress, now - lastProgress > 1_000_000_000 { lastProgress = now; progress(report) }
        }
        report.complete = true
        return report
    }

    /// Two nodes, `capacity` slots, `messages` each way (the first
    /// generation's entry point).
    public static func run(capacity: Int, messages: Int, bound: ExploreBound, mutants: ProtocolMutants = [],
                           maxSchedules: Int = 10_000_000, maxSeconds: Double = 600,
                           progress: ((Report) -> Void)? = nil) -> Report {
        var base = SimRun(scenario: .ringExchange, variant: .protocol)
        base.slots = capacity
        base.messages = messages
        base.config.mutants = mutants
        return run(base: base, bound: bound, maxSchedules: maxSchedules, maxSeconds: maxSeconds, progress: progress)
    }
}

/// Random runs until the time is up (`plenum sim fuzz`): each seed draws
/// its own workload (`SimRun.varied`: nodes, line size, slots, payload
/// granules, acknowledgement batch, crashes and restarts, reach, pool);
/// every `clusterEvery`-th seed runs the store and cluster scenario.
public enum Fuzzer {
    public struct Report: Sendable {
        public var runs: Int
        public var operations: Int
        public var seconds: Double
        public var violations: [SimOutcome]
        public var crashes = 0
        public var restarts = 0
        public var scribbles = 0
        public var repairs = 0
        public var deliveries = 0
        public var clusterRuns = 0
        public var opsPerSecond: Double { seconds > 0 ? Double(operations) / seconds : 0 }
    }

    public static func run(seconds: Double, firstSeed: UInt64, scenarios: [Scenario] = [.ringExchange, .cluster],
                           clusterEvery: Int = 4, mutants: ProtocolMutants = [],
                           progress: ((Report) -> Void)? = nil) -> Report {
        let start = monotonicNanos()
        var report = Report(runs: 0, operations: 0, seconds: 0, violations: [])
        var lastProgress = start
        var seed = firstSeed
        while report.seconds < seconds {
            let cluster = scenarios.contains(.cluster) && (!scenarios.contains(.ringExchange) || seed % UInt64(clusterEvery) == 0)
            let o = SimRunner.run(SimRun.varied(cluster ? .cluster : .ringExchange, seed: seed, mutants: mutants))
            report.runs += 1
            report.operations += o.steps
            report.crashes += o.crashes
            report.restarts += o.restarts
            report.scribbles += o.scribbles
            report.repairs += o.repairs
            report.deliveries += o.deliveries
            if cluster { report.clusterRuns += 1 }
            if o.violation != nil { report.violations.append(o) }
            seed &+= 1
            let now = monotonicNanos()
            report.seconds = Double(now - start) / 1e9
            if let progress, now - lastProgress > 1_000_000_000 { lastProgress = now; progress(report) }
        }
        return report
    }
}
