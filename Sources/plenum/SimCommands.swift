import ArgumentParser
import Foundation
import PlenumMemory
import PlenumSimulator

struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "The coherency-fault simulator: replay stale-cache scenarios against the production protocol code.",
        subcommands: [List.self, Run.self, Mutants.self, Replay.self, Explore.self, Fuzz.self])

    static func emit(_ object: Any) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    static func violationJSON(_ v: Violation?) -> Any {
        guard let v else { return NSNull() }
        return ["kind": v.kind.rawValue, "step": v.step, "node": v.node, "line": v.line, "detail": v.detail] as [String: Any]
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the scenarios and mutants.")
        @Flag var json = false
        func run() throws {
            if json {
                try emit(["scenarios": Scenario.allCases.map { ["name": $0.rawValue, "summary": $0.summary] },
                          "mutants": ProtocolMutants.all.map(\.name)])
                return
            }
            print("scenarios (each: --variant naive | protocol):")
            for s in Scenario.allCases { print("  \(s.rawValue.padding(toLength: 28, withPad: " ", startingAt: 0))\(s.summary)") }
            print("mutants (plenum sim mutants): \(ProtocolMutants.all.map(\.name).joined(separator: ", "))")
        }
    }

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "scenario", abstract: "Run one scenario with one seed.")
        @Argument(help: "Scenario name (plenum sim list).") var name: String
        @Option var variant: Scenario.Variant = .protocol
        @Option var seed: UInt64 = 1
        @Option(help: "Memory operations with injected faults, then as many to quiesce (default: 20000 for ring-exchange, 2000 otherwise).") var steps: Int?
        @Option var ordering: SimConfig.Ordering = .weak
        @Flag(help: "Tear write-backs at 8-byte granularity (injected corruption).") var torn = false
        @Option(help: "ring-exchange: messages each way.") var messages = 40
        @Option(help: "ring-exchange: slots per ring.") var slots = 4
        @Flag(help: "Print the whole trace.") var trace = false
        @Flag var json = false

        func run() throws {
            guard let scenario = Scenario(rawValue: name) else {
                throw ValidationError("unknown scenario \(name); see `plenum sim list`")
            }
            let steps = self.steps ?? scenario.defaultSteps
            guard steps > 0, messages > 0, slots >= 2, slots & (slots - 1) == 0 else {
                throw ValidationError("--steps and --messages must be positive, --slots a power of two ≥ 2")
            }
            var r = SimRun(scenario: scenario, variant: variant)
            r.config.seed = seed
            r.config.maxSteps = steps
            r.config.ordering = ordering
            r.config.tornWriteBacks = torn
            r.messages = messages
            r.slots = slots
            let o = SimRunner.run(r, tracing: trace || !json)
            if json {
                try emit(["scenario": name, "variant": variant.rawValue, "violation": o.violation != nil, "seed": seed,
                          "steps": o.steps, "token": o.token, "detail": violationJSON(o.violation),
                          "corruptions_caught": o.corruptionsCaught])
            } else {
                if trace { print(SimRunner.render(o), terminator: "") }
                else if o.violation != nil {
                    for l in o.trace.suffix(40) { print(l) }
                }
                print(o.violation.map { "VIOLATION: \($0)" } ?? "clean: no violation in \(o.steps) steps")
                print("replay: plenum sim replay \(o.token)")
            }
        }
    }

    struct Mutants: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Switch off one protocol step at a time; each must be caught.")
        @Option(help: "Seeds to try per mutant.") var budget = 200
        @Option var seed: UInt64 = 1
        @Flag var json = false

        func run() throws {
            var c = SimConfig()
            c.seed = seed
            let rows = MutantHunt.run(budget: budget, config: c)
            let killed = rows.filter(\.killed).count
            if json {
                try emit(["mutants": rows.map { ["name": $0.name, "killed": $0.killed, "seed": $0.seed, "steps": $0.steps,
                                                 "runs": $0.runs, "token": $0.token,
                                                 "violation": $0.violation.map { $0.kind.rawValue } ?? NSNull()] as [String: Any] },
                          "killed": killed, "total": rows.count])
            } else {
                for r in rows {
                    print("\(r.name.padding(toLength: 28, withPad: " ", startingAt: 0)) \(r.killed ? "killed" : "SURVIVED") after \(r.runs) run(s), seed \(r.seed), \(r.steps) steps: \(r.violation?.description ?? "-")")
                }
                print("\(killed)/\(rows.count) mutants killed")
            }
            if killed != rows.count { throw ExitCode(1) }
        }
    }

    struct Replay: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-run a token; prints the identical trace every time.")
        @Argument var token: String
        func run() throws {
            let r = try SimRun(token: token)
            print(SimRunner.render(SimRunner.run(r, tracing: true)), terminator: "")
        }
    }

    struct Explore: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every schedule of the production ring within a bound.")
        @Option var nodes = 2
        @Option var capacity = 2
        @Option var messages = 3
        @Option(help: "Involuntary context switches per schedule.") var preemptions = 2
        @Option(help: "Injected cache events per schedule (dirty-line evictions, prefetches of lines a node reads).") var cacheEvents = 0
        @Option(help: "Stop (incomplete) after this many seconds.") var maxSeconds: Double = 600
        @Flag var json = false

        func run() throws {
            guard nodes == 2 else { throw ValidationError("the ring exchange has exactly 2 nodes (--nodes 2)") }
            guard capacity >= 2, capacity & (capacity - 1) == 0, messages > 0 else {
                throw ValidationError("--capacity must be a power of two ≥ 2 and --messages positive")
            }
            let bound = ExploreBound(preemptions: preemptions, cacheEvents: cacheEvents)
            let r = Explorer.run(capacity: capacity, messages: messages, bound: bound, maxSeconds: maxSeconds) { p in
                FileHandleStderr.write("explore: \(p.schedules) schedules, \(p.states) states, \(p.violations) violations, \(String(format: "%.0f", p.seconds)) s\n")
            }
            if json {
                try emit(["schedules": r.schedules, "states": r.states, "violations": r.violations, "complete": r.complete,
                          "seconds": r.seconds, "operations": r.operations,
                          "bound": ["preemptions": preemptions, "cache_events": cacheEvents, "capacity": capacity, "messages": messages]])
            } else {
                print("\(r.complete ? "complete" : "INCOMPLETE"): \(r.schedules) schedules, \(r.states) distinct states, \(r.violations) violations, \(r.operations) operations in \(String(format: "%.1f", r.seconds)) s (bound: ≤\(preemptions) preemptions, ≤\(cacheEvents) cache events, every store-buffer drain order)")
                if let v = r.firstViolation { print("first violation: \(v)") }
            }
            if r.violations > 0 { throw ExitCode(1) }
        }
    }

    struct Fuzz: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Random seeds of ring-exchange until the time is up.")
        @Option var seconds: Double = 10
        @Option var seed: UInt64 = 1
        @Option var messages = 40
        @Flag var json = false

        func run() throws {
            var base = SimRun(scenario: .ringExchange, variant: .protocol)
            base.messages = messages
            let r = Fuzzer.run(seconds: seconds, firstSeed: seed, base: base) { p in
                FileHandleStderr.write("fuzz: \(p.runs) runs, \(p.operations) operations, \(Int(p.opsPerSecond)) ops/s, \(p.violations.count) violations\n")
                for v in p.violations.suffix(1) { FileHandleStderr.write("  violation: \(v.token)\n") }
            }
            if json {
                try emit(["runs": r.runs, "operations": r.operations, "seconds": r.seconds, "ops_per_second": r.opsPerSecond,
                          "violations": r.violations.map(\.token)])
            } else {
                print("\(r.runs) runs, \(r.operations) simulated memory operations in \(String(format: "%.1f", r.seconds)) s: \(Int(r.opsPerSecond)) ops/s; \(r.violations.count) violations")
                for v in r.violations { print("  \(v.violation!) — replay: plenum sim replay \(v.token)") }
            }
            if !r.violations.isEmpty { throw ExitCode(1) }
        }
    }
}

extension Scenario.Variant: ExpressibleByArgument {}
extension SimConfig.Ordering: ExpressibleByArgument {}
