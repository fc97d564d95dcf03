import Foundation
import PlenumMemory
import PlenumSimulator
import Testing

@Suite struct ScenarioTests {
    static let primitives = Scenario.allCases.filter { $0 != .ringExchange }

    @Test(arguments: Scenario.allCases)
    func naiveVariantIsCaught(_ scenario: Scenario) {
        var r = SimRun(scenario: scenario, variant: .naive)
        r.config.maxSteps = scenario.defaultSteps
        let (o, runs) = SimRunner.hunt(r, budget: 10)
        #expect(o.violation != nil, "\(scenario.rawValue) naive survived \(runs) seeds")
    }

    @Test(arguments: Scenario.allCases)
    func protocolVariantIsClean(_ scenario: Scenario) {
        for seed in UInt64(1)...10 {
            var r = SimRun(scenario: scenario, variant: .protocol)
            r.config.seed = seed
            r.config.maxSteps = scenario.defaultSteps
            let o = SimRunner.run(r)
            #expect(o.violation == nil, "\(o.token): \(o.violation?.description ?? "")")
        }
    }

    @Test func protocolRingIsCleanUnderTSOAndPauses() {
        for seed in UInt64(1)...6 {
            var r = SimRun(scenario: .ringExchange, variant: .protocol)
            r.config.seed = seed
            r.config.ordering = .tso
            r.config.pausePPM = 2_000
            #expect(SimRunner.run(r).violation == nil)
        }
    }

    @Test func tornWriteBacksAreCaughtByTheChecksumNotMissed() {
        var caught = 0
        for seed in UInt64(1)...12 {
            var r = SimRun(scenario: .ringExchange, variant: .protocol)
            r.config.seed = seed
            r.config.tornWriteBacks = true
            let o = SimRunner.run(r)
            #expect(o.violation == nil, "\(o.token): \(o.violation?.description ?? "")")
            caught += o.corruptionsCaught
        }
        #expect(caught > 0, "torn write-backs should damage some slots, and the CRC must refuse them")
    }
}

@Suite struct MutantTests {
    @Test func everyMutantIsKilled() {
        let rows = MutantHunt.run(budget: 120)
        #expect(rows.count == ProtocolMutants.all.count)
        for row in rows {
            #expect(row.killed, "mutant \(row.name) survived \(row.runs) seeds")
        }
    }

    @Test func productionMemoryRunsNoMutant() throws {
        let m = try Mapping(anonymous: 4096)
        #expect(m.memory(lineSize: .default).mutants.isEmpty)
    }
}

@Suite struct GenerationTwoTests {
    /// Varied workloads (nodes, line sizes, slot sizes, acknowledgement
    /// batches, reach, pool) with crashes, restarts and resets stay clean.
    @Test func ringExchangeWithCrashesAndRestartsIsClean() {
        var crashes = 0, restarts = 0, deliveries = 0
        var nodeCounts = Set<Int>(), lines = Set<Int>()
        for seed in UInt64(1)...60 {
            let r = SimRun.varied(.ringExchange, seed: seed)
            let o = SimRunner.run(r)
            #expect(o.violation == nil, "\(o.token): \(o.violation?.description ?? "")")
            crashes += o.crashes
            restarts += o.restarts
            deliveries += o.deliveries
            nodeCounts.insert(r.config.nodes)
            lines.insert(r.config.lineSize)
        }
        #expect(crashes > 5 && restarts > 5, "the fuzz workload must crash and restart nodes")
        #expect(nodeCounts.count >= 2 && lines.count == 3)
        #expect(deliveries > 1_000)
    }

    /// The production store and cluster cores on 3–4 nodes, with crashes.
    @Test func clusterWithCrashesIsClean() {
        var crashes = 0, reads = 0
        for seed in UInt64(1)...24 {
            let o = SimRunner.run(SimRun.varied(.cluster, seed: seed))
            #expect(o.violation == nil, "\(o.token): \(o.violation?.description ?? "")")
            crashes += o.crashes
            reads += o.deliveries
        }
        #expect(crashes > 0)
        #expect(reads > 100, "clients must read objects across nodes")
    }

    @Test func naiveClusterIsCaught() {
        var r = SimRun(scenario: .cluster, variant: .naive)
        r.config.nodes = 3
        r.config.maxSteps = Scenario.cluster.defaultSteps
        let (o, runs) = SimRunner.hunt(r, budget: 10)
        #expect(o.violation != nil, "cluster naive survived \(runs) seeds")
    }

    /// Every named scenario's default naive run shows its hazard.
    @Test(arguments: Scenario.allCases)
    func defaultNaiveRunShowsTheHazard(_ scenario: Scenario) {
        var r = SimRun(scenario: scenario, variant: .naive)
        r.config.maxSteps = scenario.defaultSteps
        if scenario == .cluster { r.config.nodes = 3 }
        #expect(SimRunner.run(r).violation != nil, "\(scenario.rawValue) --variant naive, seed 1")
    }
}

@Suite struct ReplayTests {
    @Test func replayingATokenReproducesTheTraceByteForByte() throws {
        var r = SimRun(scenario: .ringExchange, variant: .naive)
        r.config.seed = 4
        let first = SimRunner.run(r, tracing: true)
        #expect(first.violation != nil)
        let again = SimRunner.run(try SimRun(token: first.token), tracing: true)
        #expect(again.trace == first.trace)
        #expect(SimRunner.render(again) == SimRunner.render(first))
        #expect(again.violation == first.violation)
        // A different seed is a different schedule.
        r.config.seed = 5
        #expect(SimRunner.run(r, tracing: true).trace != first.trace)
    }

    @Test func tokensRoundTripAndBadOnesAreRefused() throws {
        var r = SimRun(scenario: .flushBeforeStore, variant: .naive)
        r.config.seed = 99
        r.config.ordering = .tso
        r.config.tornWriteBacks = true
        r.config.mutants = .noFlushAfterPost
        r.messages = 7
        r.slots = 8
        #expect(try SimRun(token: r.token) == r)
        // Every parameter of a varied run survives the token.
        for seed in UInt64(1)...40 {
            let v = SimRun.varied(seed % 2 == 0 ? .cluster : .ringExchange, seed: seed, mutants: .ackBeforeRead)
            #expect(try SimRun(token: v.token) == v, "\(v.token)")
        }
        // Format 1 tokens still parse, with the first generation's defaults.
        let v1 = try SimRun(token: "plenum-sim/1/ring-exchange/protocol/seed=3/steps=20000/mutants=2/order=weak/torn=0/messages=40/slots=4")
        #expect(v1.config.nodes == 2 && v1.config.lineSize == 128 && v1.slotLines == 2 && v1.config.mutants == .noInvalidateBeforePoll)
        let two = SimRun.varied(.ringExchange, seed: 5)
        for bad in ["", "plenum-sim/3/ring-exchange", r.token.replacingOccurrences(of: "flush-before-store", with: "nope"),
                    r.token.replacingOccurrences(of: "slots=8", with: "slots=6"),
                    r.token.replacingOccurrences(of: "order=tso", with: "order=sc"),
                    r.token.replacingOccurrences(of: "seed=99", with: "seed=x"),
                    r.token.replacingOccurrences(of: "line=128", with: "line=100"),
                    r.token.replacingOccurrences(of: "nodes=2", with: "nodes=1"),
                    r.token.replacingOccurrences(of: "reach=all", with: "reach=1.2"),   // nodes 0 and 1 share nothing
                    r.token.replacingOccurrences(of: "reach=all", with: "reach=3"),     // one mask for two nodes
                    two.token.replacingOccurrences(of: "/ack=", with: "/acks=")] {
            #expect(throws: SimRun.BadToken.self) { try SimRun(token: bad) }
        }
    }

    /// Tokens found during development stay as they were judged.
    @Test func regressionTokensKeepTheirVerdict() throws {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../Simulator/Regressions/tokens.txt").standardized
        let text = try String(contentsOf: file, encoding: .utf8)
        var checked = 0
        for raw in text.split(separator: "\n") {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first
                .map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
            guard !line.isEmpty else { continue }
            let parts = line.split(separator: " ").map(String.init)
            try #require(parts.count == 2, "malformed line: \(raw)")
            let o = SimRunner.run(try SimRun(token: parts[1]))
            if parts[0] == "clean" {
                #expect(o.violation == nil, "\(parts[1]) regressed: \(o.violation?.description ?? "")")
            } else {
                let kind = parts[0].replacingOccurrences(of: "violation:", with: "")
                #expect(o.violation?.kind.rawValue == kind, "\(parts[1]): expected \(kind), got \(o.violation?.description ?? "no violation")")
            }
            checked += 1
        }
        #expect(checked >= 10)
    }
}

@Suite struct ExploreTests {
    @Test func boundedExplorationOfTheRingIsCompleteAndClean() {
        let preempt = Explorer.run(capacity: 2, messages: 2, bound: ExploreBound(preemptions: 1, cacheEvents: 0), maxSeconds: 120)
        #expect(preempt.complete)
        #expect(preempt.violations == 0, "\(preempt.firstViolation?.description ?? "")")
        #expect(preempt.schedules > 100)
        #expect(preempt.states > 100)
        let events = Explorer.run(capacity: 2, messages: 1, bound: ExploreBound(preemptions: 0, cacheEvents: 1), maxSeconds: 120)
        #expect(events.complete)
        #expect(events.violations == 0, "\(events.firstViolation?.description ?? "")")
        #expect(events.schedules > 10)
    }

    @Test func explorationFindsAMutant() {
        let r = Explorer.run(capacity: 2, messages: 2, bound: ExploreBound(preemptions: 1, cacheEvents: 0),
                             mutants: .noInvalidateBeforePoll, maxSchedules: 50, maxSeconds: 60)
        #expect(r.violations > 0, "a consumer that never invalidates must be caught (stale read or stalled ring)")
        #expect(r.firstViolation.map { [.staleRead, .lost].contains($0.kind) } == true)
    }

    /// State hashing cuts schedules at explored states and finds the same.
    @Test func stateHashingPrunesAndExploresMoreThanTwoNodes() {
        var base = SimRun(scenario: .ringExchange, variant: .protocol)
        base.config.nodes = 3
        base.slots = 2
        base.messages = 1
        let r = Explorer.run(base: base, bound: ExploreBound(preemptions: 1, cacheEvents: 0), maxSeconds: 240)
        #expect(r.complete)
        #expect(r.violations == 0, "\(r.firstViolation?.description ?? "")")
        #expect(r.pruned > 0)
    }
}
