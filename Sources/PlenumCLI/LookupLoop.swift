import ArgumentParser
import Foundation
import PlenumClient
import PlenumCluster
import PlenumMemory
import PlenumStore
import PlenumWire

/// `plenum _lookups`: remote lookups from one node of a running cluster, for
/// profiling a store with callgrind (run the home under valgrind with a
/// long `dead_after_ms` and `request_timeout_ms`, then divide its counts by
/// `--count`). Prints the p50 in µs.
struct LookupLoop: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "_lookups", abstract: "Internal: remote lookups against a running cluster (profiling).",
                                                    shouldDisplay: false)
    @Option(help: "The cluster file.") var cluster: String
    @Option(help: "The node whose client asks.") var from: UInt32 = 0
    @Option(help: "The node the ids are homed at (and stored on).") var home: UInt32 = 1
    @Option(help: "Lookups.") var count = 10_000
    @Flag(help: "Also trace the lookups hop by hop and print where their time goes.") var trace = false

    func run() throws {
        let config = try loadCluster(cluster)
        guard let asker = config.node(from), let homeNode = config.node(home), from != home else { throw ValidationError("--from and --home: two nodes of the file") }
        let ids = idsHomed(at: home, among: config.nodes.map(\.id), count: 64, fill: 0xA7)
        let owner = try PlenumClient(socketPath: homeNode.socket, prefault: false)
        for id in ids where try !owner.contains(id) { try owner.put(id, data: [1]) }
        let c = try PlenumClient(socketPath: asker.socket, prefault: false)
        let controls = trace ? try config.nodes.map { try PlenumClient(socketPath: $0.socket, rings: false, prefault: false) } : []
        for t in controls { _ = try t.hopTrace(on: true) }
        var times: [UInt64] = [], ops: [HopBreakdown.Op] = []
        times.reserveCapacity(count)
        for i in 0..<count {
            let t0 = monotonicNanos()
            guard try c.contains(ids[i % ids.count]) else { throw CLIError("lookup \(i): the id is missing") }
            let t1 = monotonicNanos()
            times.append(t1 &- t0)
            if trace { ops.append(.init(start: t0, end: t1)) }
        }
        if trace {
            var events: [NodeID: [HopEvent]] = [:]
            for (n, t) in zip(config.nodes, controls) { events[n.id] = try t.hopTrace(on: false).events }
            print(HopBreakdown.analyse(name: "lookup", ops: ops, events: events, requester: from, client: c.hello.clientId).table())
        }
        times.sort()
        print(String(format: "%d lookups node %u → home %u: p50 %.2f µs (the client slept %d times, woken %d)", count, from, home, Double(times[times.count / 2]) / 1000, Int(c.sleepCount), c.wakes))
    }
}
