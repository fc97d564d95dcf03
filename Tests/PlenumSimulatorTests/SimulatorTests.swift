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
        let rows = MutantHunt.run(budget: 60)
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
        for bad in ["", "plenum-sim/2/ring-exchange", r.token.replacingOccurrences(of: "flush-before-store", with: "nope"),
                    r.token.replacingOccurrences(of: "slots=8", with: "slots=6"),
                    r.token.replacingOccurrences(of: "order=tso", with: "order=sc"),
                    r.token.replacingOccurrences(of: "seed=99", with: "seed=x")] {
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
}
