import PlenumMemory

/// Exhaustive exploration of the production ring (SPEC.md §7.5): every
/// schedule within a bound, by stateless re-execution from the start with a
/// depth-first script of choices.
///
/// The bound: at most `preemptions` involuntary switches (switching when a
/// node waits is free), at most `cacheEvents` injected evictions or
/// prefetches of ring lines, and every order the weak model allows for
/// draining a store buffer at a fence. Store buffers drain only at fences
/// (and when full) in this mode, so stores stay invisible as long as the
/// model permits.
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
    }

    public static func run(capacity: Int, messages: Int, bound: ExploreBound, mutants: ProtocolMutants = [],
                           maxSchedules: Int = 1_000_000, maxSeconds: Double = 600,
                           progress: ((Report) -> Void)? = nil) -> Report {
        let start = monotonicNanos()
        var report = Report(schedules: 0, states: 0, violations: 0, complete: false, seconds: 0, operations: 0)
        var seen = Set<UInt64>()
        var script: [Int]? = []
        var lastProgress = start
        while let s = script {
            var config = SimConfig()
            config.seed = 0
            config.maxSteps = 4_000 // a schedule takes a few hundred operations
            config.mutants = mutants
            let sim = Simulation(config: config, script: s, bound: bound)
            RingExchange(messages: messages, slots: capacity).run(sim)
            report.schedules += 1
            report.operations += sim.step
            seen.formUnion(sim.states ?? [])
            if let v = sim.violation {
                report.violations += 1
                if report.firstViolation == nil { report.firstViolation = v; report.firstScript = sim.chooser.taken.map(\.choice) }
            }
            script = sim.chooser.nextScript()
            let now = monotonicNanos()
            report.seconds = Double(now - start) / 1e9
            report.states = seen.count
            if report.schedules >= maxSchedules || report.seconds > maxSeconds { return report }
            if let progress, now - lastProgress > 1_000_000_000 { lastProgress = now; progress(report) }
        }
        report.complete = true
        return report
    }
}

/// Random schedules until the time is up (`plenum sim fuzz`).
public enum Fuzzer {
    public struct Report: Sendable {
        public var runs: Int
        public var operations: Int
        public var seconds: Double
        public var violations: [SimOutcome]
        public var opsPerSecond: Double { seconds > 0 ? Double(operations) / seconds : 0 }
    }

    public static func run(seconds: Double, firstSeed: UInt64, base: SimRun,
                           progress: ((Report) -> Void)? = nil) -> Report {
        let start = monotonicNanos()
        var report = Report(runs: 0, operations: 0, seconds: 0, violations: [])
        var lastProgress = start
        var seed = firstSeed
        while report.seconds < seconds {
            var r = base
            r.config.seed = seed
            // Every third seed runs the TSO model (the token records it).
            r.config.ordering = seed % 3 == 2 ? .tso : .weak
            let o = SimRunner.run(r)
            report.runs += 1
            report.operations += o.steps
            if o.violation != nil { report.violations.append(o) }
            seed &+= 1
            let now = monotonicNanos()
            report.seconds = Double(now - start) / 1e9
            if let progress, now - lastProgress > 1_000_000_000 { lastProgress = now; progress(report) }
        }
        return report
    }
}
