import ArgumentParser
import Foundation
import PlenumClient
import PlenumCluster
import PlenumMemory
import PlenumStore
import PlenumWire

/// `plenum _lookups`: remote lookups (or gets, creates on a peer, deletes)
/// from one node of a running cluster, for
/// profiling a store with callgrind (run the home under valgrind with a
/// long `dead_after_ms` and `request_timeout_ms`, then divide its counts by
/// `--count`). Prints the p50 in µs.
struct LookupLoop: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "_lookups", abstract: "Internal: remote lookups against a running cluster (profiling).",
                                                    shouldDisplay: false)
    @Option(help: "The cluster file.") var cluster: String
    @Option(help: "The node whose client asks.") var from: UInt32 = 0
    @Option(help: "The node the ids are homed at (and stored on).") var home: UInt32 = 1
    @Option(help: "Operations.") var count = 10_000
    @Option(help: "contains, get (get+release), create (create on --owner + seal) or delete (of objects on --owner).") var op = "contains"
    @Option(help: "For get, create and delete: the node whose memory holds the objects (default: the home).") var owner: UInt32?
    @Option(help: "create and delete: skip this many of the ids first (a warm-up run takes the first ones).") var skip = 0
    @Option(help: "contains only: this many lookups in flight (PlenumClient.contains(_:window:)); prints lookups per second.") var window = 1
    @Flag(help: "Also trace the lookups hop by hop and print where their time goes.") var trace = false
    @Flag(help: "contains: every lookup a request to the store (the client reads no index itself, SPEC §10.4 \"Client peeks\").") var viaStore = false

    func run() throws {
        let config = try loadCluster(cluster)
        guard let asker = config.node(from), config.node(home) != nil, from != home else { throw ValidationError("--from and --home: two nodes of the file") }
        let ownerID = owner ?? home
        guard let ownerNode = config.node(ownerID) else { throw ValidationError("--owner: a node of the file") }
        let live = config.nodes.map(\.id)
        let kind: String
        switch op {
        case "contains", "get", "create", "delete": kind = op
        default: throw ValidationError("--op: contains, get, create or delete")
        }
        // create and delete name `count` ids of their own (fill 0xC3 + the
        // owner), so `--op create` then `--op delete` removes what it made.
        let ids = kind == "create" || kind == "delete"
            ? Array(idsHomed(at: home, among: live, count: skip + count, fill: 0xC3 &+ UInt8(truncatingIfNeeded: ownerID)).dropFirst(skip))
            : idsHomed(at: home, among: live, count: 64, fill: 0xA7 &+ UInt8(truncatingIfNeeded: ownerID))
        let c = try PlenumClient(socketPath: asker.socket, prefault: false)
        c.readsIndexes = !viaStore
        if kind == "contains" || kind == "get" {
            let holder = try PlenumClient(socketPath: ownerNode.socket, prefault: false)
            for id in ids where try !holder.contains(id) { try holder.put(id, data: [1]) }
        }
        let controls = trace ? try config.nodes.map { try PlenumClient(socketPath: $0.socket, rings: false, prefault: false) } : []
        for t in controls { _ = try t.hopTrace(on: true) }
        if window > 1 {
            guard kind == "contains" else { throw ValidationError("--window: contains only") }
            let all = (0..<count).map { ids[$0 % ids.count] }
            let t0 = monotonicNanos()
            let found = try c.contains(all, window: window)
            let dt = Double(monotonicNanos() &- t0) / 1e9
            guard found.allSatisfy({ $0 }) else { throw CLIError("a lookup found nothing") }
            print(String(format: "%d lookups node %u → home %u, %d in flight: %.0f per second", count, from, home, window, Double(count) / dt))
            return
        }
        var times: [UInt64] = [], ops: [HopBreakdown.Op] = []
        times.reserveCapacity(count)
        for i in 0..<count {
            let id = ids[i % ids.count]
            let t0 = monotonicNanos()
            switch kind {
            case "contains":
                guard try c.contains(id) else { throw CLIError("lookup \(i): the id is missing") }
            case "get":
                guard let b = try c.get([id], timeoutMs: 0).first ?? nil else { throw CLIError("get \(i): the id is missing") }
                try c.release(b)
            case "create":
                let l = try c.create(id, dataSize: 64, onNode: ownerID)
                try c.seal(id, l)
            default:
                if let e = try c.delete([id]).first ?? nil { throw CLIError("delete \(i): \(e)") }
            }
            let t1 = monotonicNanos()
            times.append(t1 &- t0)
            if trace { ops.append(.init(start: t0, end: t1)) }
        }
        if trace {
            var events: [NodeID: [HopEvent]] = [:]
            for (n, t) in zip(config.nodes, controls) { events[n.id] = try t.hopTrace(on: false).events }
            print(HopBreakdown.analyse(name: kind, ops: ops, events: events, requester: from, client: c.hello.clientId).table())
        }
        times.sort()
        print(String(format: "%d %@ node %u → home %u (owner %u): p50 %.2f µs (the client slept %d times, woken %d)", count, kind, from, home, ownerID, Double(times[times.count / 2]) / 1000, Int(c.sleepCount), c.wakes))
    }
}
