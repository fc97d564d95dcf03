import ArgumentParser
import Foundation
import PlenumMemory
import PlenumSimulator

struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "The coherency-fault simulator: replay stale-cache scenarios against the production protocol code.",
        subcommands: [List.self, Run.self, Mutants.self, Replay.self, Explore.self, Fuzz.self])

    /// A run must be the same in every process (SPEC §7.7): the production
    /// cores iterate dictionaries, whose order follows the per-process hash
    /// seed unless the Swift runtime is told otherwise before it starts. So
    /// `plenum sim …` re-executes itself once with SWIFT_DETERMINISTIC_HASHING
    /// set; without it a token fuzz found could replay clean (issue 24,
    /// cluster seed 4136).
    static func deterministicHashing() {
        guard getenv("SWIFT_DETERMINISTIC_HASHING") == nil else { return }
        setenv("SWIFT_DETERMINISTIC_HASHING", "1", 1)
        let args = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", args)
        // Not reached unless exec failed: run anyway, and say why replay may differ.
        FileHandle.standardError.write(Data("plenum sim: could not re-execute with deterministic hashing (\(String(cString: strerror(errno)))); set SWIFT_DETERMINISTIC_HASHING=1 for replayable runs\n".utf8))
    }

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
                          "mutants": ProtocolMutants.all.map { ["name": $0.name, "scenario": MutantHunt.scenario(for: $0.mutant).rawValue] }])
                return
            }
            print("scenarios (each: --variant naive | protocol):")
            for s in Scenario.allCases { print("  \(s.rawValue.padding(toLength: 28, withPad: " ", startingAt: 0))\(s.summary)") }
            print("ring mutants (killed by ring-exchange): \(ProtocolMutants.ring.map(\.name).joined(separator: ", "))")
            print("store mutants (killed by cluster): \(ProtocolMutants.store.map(\.name).joined(separator: ", "))")
        }
    }

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "scenario", abstract: "Run one scenario with one seed.")
        @Argument(help: "Scenario name (plenum sim list).") var name: String
        @Option var variant: Scenario.Variant = .protocol
        @Option var seed: UInt64 = 1
        @Flag(help: "ring-exchange, cluster: draw the workload from the seed, as fuzz and mutants do (the other workload options are ignored).") var varied = false
        @Option(help: "Memory operations with injected faults, then as many to quiesce (default: 20000 for ring-exchange, 60000 for cluster, 2000 otherwise).") var steps: Int?
        @Option var ordering: SimConfig.Ordering = .weak
        @Flag(help: "Tear write-backs at 8-byte granularity (injected corruption).") var torn = false
        @Option(help: "ring-exchange, cluster: nodes.") var nodes = 2
        @Option(help: "Cache line (and flush granule) size: 64, 128 or 256.") var line = 128
        @Option(help: "ring-exchange: messages per ring; cluster: operations per client.") var messages = 40
        @Option(help: "Slots per ring (a power of two ≥ 2).") var slots = 4
        @Option(help: "Lines per slot (3: a payload spans granules beyond the header's).") var slotLines = 3
        @Option(help: "Consumers' acknowledgement batch.") var ack = 2
        @Option(help: "Node crashes per million operations (ring-exchange restarts them).") var crash = 0
        @Option(help: "Comma-separated mutant names to switch on (plenum sim list).") var mutants: String?
        @Flag(help: "Print the whole trace.") var trace = false
        @Flag var json = false

        func run() throws {
            guard let scenario = Scenario(rawValue: name) else {
                throw ValidationError("unknown scenario \(name); see `plenum sim list`")
            }
            let m = try SimCommand.mutants(mutants)
            var r: SimRun
            if varied {
                r = SimRun.varied(scenario, seed: seed, mutants: m)
                r.variant = variant
            } else {
                let steps = self.steps ?? scenario.defaultSteps
                guard steps > 0, messages > 0, slots >= 2, slots & (slots - 1) == 0, [64, 128, 256].contains(line), slotLines >= 1, ack >= 1 else {
                    throw ValidationError("--steps, --messages, --slot-lines and --ack must be positive, --slots a power of two ≥ 2, --line 64, 128 or 256")
                }
                guard (2...8).contains(nodes), scenario == .ringExchange || scenario == .cluster || nodes == 2 else {
                    throw ValidationError("--nodes is 2…8 for ring-exchange and cluster; the other scenarios have 2 nodes")
                }
                r = SimRun(scenario: scenario, variant: variant)
                r.config.seed = seed
                r.config.maxSteps = steps
                r.config.ordering = ordering
                r.config.tornWriteBacks = torn
                r.config.nodes = scenario == .cluster ? max(nodes, 3) : nodes
                r.config.lineSize = line
                r.config.crashPPM = crash
                r.config.mutants = m
                r.messages = messages
                r.slots = slots
                r.slotLines = slotLines
                r.ackBatch = ack
            }
            if let steps { r.config.maxSteps = steps }
            let o = SimRunner.run(r, tracing: trace || !json)
            if json {
                try emit(["scenario": name, "variant": r.variant.rawValue, "violation": o.violation != nil, "seed": seed,
                          "steps": o.steps, "token": o.token, "detail": violationJSON(o.violation),
                          "corruptions_caught": o.corruptionsCaught, "crashes": o.crashes, "restarts": o.restarts,
                          "deliveries": o.deliveries])
            } else {
                if trace { print(SimRunner.render(o), terminator: "") }
                else if o.violation != nil {
                    for l in o.trace.suffix(40) { print(l) }
                }
                print(o.violation.map { "VIOLATION: \($0)" } ?? "clean: no violation in \(o.steps) steps (\(o.deliveries) deliveries, \(o.crashes) crashes, \(o.restarts) restarts)")
                print("replay: plenum sim replay \(o.token)")
            }
        }
    }

    struct Mutants: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Switch off one protocol step at a time; each must be caught.")
        @Option(help: "Seeds to try per mutant (each seed draws its own workload).") var budget = 200
        @Option var seed: UInt64 = 1
        @Flag(help: "Run the whole budget per mutant and report the kill rate.") var rates = false
        @Option(help: "Comma-separated mutant names (default: all).") var only: String?
        @Flag var json = false

        func run() throws {
            let names = only.map { $0.split(separator: ",").map(String.init) } ?? []
            for n in names where !ProtocolMutants.all.contains(where: { $0.name == n }) {
                throw ValidationError("unknown mutant \(n); see `plenum sim list`")
            }
            let rows = MutantHunt.run(budget: budget, firstSeed: seed, rates: rates, only: names) { r in
                if !json { FileHandleStderr.write("mutants: \(r.name) \(r.killed ? "killed" : "survived")\n") }
            }
            let killed = rows.filter(\.killed).count
            if json {
                try emit(["mutants": rows.map { row in
                    ["name": row.name, "killed": row.killed, "seed": row.seed, "steps": row.steps,
                     "runs": row.runs, "kills": row.kills, "token": row.token,
                     "scenario": MutantHunt.scenario(for: ProtocolMutants.all.first { $0.name == row.name }!.mutant).rawValue,
                     "violation": row.violation.map { $0.kind.rawValue } ?? NSNull()] as [String: Any] },
                          "killed": killed, "total": rows.count, "budget": budget, "rates": rates])
            } else {
                for r in rows {
                    let rate = rates ? String(format: " — kill rate %d/%d (%.0f%%)", r.kills, r.runs, 100 * Double(r.kills) / Double(max(1, r.runs))) : " after \(r.runs) run(s)"
                    print("\(r.name.padding(toLength: 32, withPad: " ", startingAt: 0)) \(r.killed ? "killed" : "SURVIVED")\(rate); first seed \(r.seed): \(r.violation?.description ?? "-")")
                    if r.killed { print("    replay: plenum sim replay \(r.token)") }
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
        @Option(help: "Messages per ring.") var messages = 3
        @Option var line = 128
        @Option var slotLines = 2
        @Option var ack = 1
        @Option(help: "Involuntary context switches per schedule.") var preemptions = 2
        @Option(help: "Injected cache events per schedule (dirty-line evictions; prefetches and clean evictions of lines a node reads).") var cacheEvents = 0
        @Option(help: "Comma-separated mutants to switch on (plenum sim list).") var mutants: String?
        @Flag(help: "Explore without state hashing (every schedule to its end).") var noStateHashing = false
        @Option(help: "Stop (incomplete) after this many seconds.") var maxSeconds: Double = 600
        @Flag var json = false

        func run() throws {
            guard (2...8).contains(nodes), capacity >= 2, capacity & (capacity - 1) == 0, messages > 0,
                  [64, 128, 256].contains(line), slotLines >= 1, ack >= 1 else {
                throw ValidationError("--nodes 2…8, --capacity a power of two ≥ 2, --messages, --slot-lines, --ack positive, --line 64, 128 or 256")
            }
            var base = SimRun(scenario: .ringExchange, variant: .protocol)
            base.config.nodes = nodes
            base.config.lineSize = line
            base.config.mutants = try SimCommand.mutants(mutants)
            base.slots = capacity
            base.messages = messages
            base.slotLines = slotLines
            base.ackBatch = ack
            let bound = ExploreBound(preemptions: preemptions, cacheEvents: cacheEvents)
            let r = Explorer.run(base: base, bound: bound, stateHashing: !noStateHashing, maxSeconds: maxSeconds) { p in
                FileHandleStderr.write("explore: \(p.schedules) schedules (\(p.pruned) pruned), \(p.states) states, \(p.violations) violations, \(String(format: "%.0f", p.seconds)) s\n")
            }
            if json {
                try emit(["schedules": r.schedules, "pruned": r.pruned, "states": r.states, "violations": r.violations, "complete": r.complete,
                          "seconds": r.seconds, "operations": r.operations,
                          "first_violation": violationJSON(r.firstViolation),
                          "bound": ["nodes": nodes, "preemptions": preemptions, "cache_events": cacheEvents, "capacity": capacity,
                                    "messages": messages, "line": line, "slot_lines": slotLines, "ack": ack,
                                    "state_hashing": !noStateHashing, "mutants": base.config.mutants.rawValue] as [String: Any]])
            } else {
                print("\(r.complete ? "complete" : "INCOMPLETE"): \(r.schedules) schedules (\(r.pruned) cut at an explored state), \(r.states) distinct states, \(r.violations) violations, \(r.operations) operations in \(String(format: "%.1f", r.seconds)) s (bound: \(nodes) nodes, ≤\(preemptions) preemptions, ≤\(cacheEvents) cache events, every store-buffer drain order)")
                if let v = r.firstViolation { print("first violation: \(v)") }
            }
            if r.violations > 0 { throw ExitCode(1) }
        }
    }

    struct Fuzz: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Random seeds, each with its own workload, crashes and restarts, until the time is up.")
        @Option var seconds: Double = 10
        @Option var seed: UInt64 = 1
        @Option(help: "ring-exchange, cluster, or both (every 4th seed runs cluster).") var scenario = "both"
        @Flag var json = false

        func run() throws {
            let scenarios: [Scenario]
            switch scenario {
            case "both": scenarios = [.ringExchange, .cluster]
            case "ring-exchange": scenarios = [.ringExchange]
            case "cluster": scenarios = [.cluster]
            default: throw ValidationError("--scenario is ring-exchange, cluster or both")
            }
            let r = Fuzzer.run(seconds: seconds, firstSeed: seed, scenarios: scenarios) { p in
                FileHandleStderr.write("fuzz: \(p.runs) runs (\(p.clusterRuns) cluster), \(p.operations) operations, \(Int(p.opsPerSecond)) ops/s, \(p.crashes) crashes, \(p.violations.count) violations\n")
                for v in p.violations.suffix(1) { FileHandleStderr.write("  violation: \(v.token)\n") }
            }
            if json {
                try emit(["runs": r.runs, "cluster_runs": r.clusterRuns, "operations": r.operations, "seconds": r.seconds,
                          "ops_per_second": r.opsPerSecond, "crashes": r.crashes, "restarts": r.restarts, "deliveries": r.deliveries,
                          "link_garbage_written": r.scribbles, "link_descriptors_repaired": r.repairs,
                          "violations": r.violations.map(\.token)])
            } else {
                print("\(r.runs) runs (\(r.clusterRuns) cluster), \(r.operations) simulated memory operations in \(String(format: "%.1f", r.seconds)) s: \(Int(r.opsPerSecond)) ops/s; \(r.crashes) crashes, \(r.restarts) restarts, \(r.scribbles) link-garbage writes (\(r.repairs) descriptors repaired), \(r.deliveries) deliveries and checked reads; \(r.violations.count) violations")
                for v in r.violations { print("  \(v.violation!) — replay: plenum sim replay \(v.token)") }
            }
            if !r.violations.isEmpty { throw ExitCode(1) }
        }
    }

    static func mutants(_ names: String?) throws -> ProtocolMutants {
        var m: ProtocolMutants = []
        for n in (names ?? "").split(separator: ",").map(String.init) {
            guard let found = ProtocolMutants.all.first(where: { $0.name == n }) else {
                throw ValidationError("unknown mutant \(n); see `plenum sim list`")
            }
            m.insert(found.mutant)
        }
        return m
    }
}

extension Scenario.Variant: ExpressibleByArgument {}
extension SimConfig.Ordering: ExpressibleByArgument {}
