import ArgumentParser
import Foundation
import Histogram
import PlenumBench
import PlenumClient
import PlenumCluster
import PlenumMemory
import PlenumStore
import PlenumWire

/// `plenum bench cluster` (SPEC §8): a local cluster of real stores; every
/// cross-node operation beside the same operation on the local node and the
/// flushed cache-line floor, interleaved per round; remote zero-copy read
/// bandwidth beside local memcpy; remote lookup as the cluster grows.
struct ClusterBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cluster", abstract: "Cluster benchmark: remote vs local operations, the flushed floor, bandwidth, lookup vs N.")
    @Option(help: "Operations per series per round.") var operations = 2000
    @Option(help: "Rounds; every series runs once per round, interleaved.") var rounds = 3
    @Option(help: "Nodes of the main cluster.") var nodes = 4
    @Option(help: "Cluster sizes for the lookup-scaling series, e.g. 2,4,8.") var scaling = "2,4,8"
    @Option(help: "Object size for the bandwidth series (MiB).") var bandwidthMib = 64
    @Flag(help: "Clients talk to their store over the socket only (no client rings).") var socketOnly = false
    @Option(help: "Then trace this many operations of each kind hop by hop and print where their time goes (0: no trace).")
    var trace = 0
    @Flag var json = false

    struct Row: Codable {
        var name: String
        var remote: LatencySummary?
        var local: LatencySummary?
        var remoteOverLocalP50: Double?
        var remoteOverFloorP50: Double?
        var note: String
    }

    struct Report: Codable {
        var benchmark = "cluster"
        var nodes: Int
        var operations: Int
        var rounds: Int
        /// The round whose flushed floor p50 is the median.
        var floorFlushedRttNs: LatencySummary
        var floorFlushedP50PerRoundNs: [UInt64]
        var ringRttNs: LatencySummary
        var rows: [Row]
        var bandwidth: [String: Double]
        var lookupP50NsByNodes: [String: UInt64]
        var lookupTarget: String
        var lookupTargetMet: Bool
        /// With --trace: the median time between consecutive hops, per operation.
        var trace: [HopBreakdown]?
    }

    func log(_ s: String) { if !json { FileHandleStderr.write(s + "\n") } }

    func run() throws {
        let sizes = scaling.split(separator: ",").compactMap { Int($0) }
        guard trace >= 0, operations > 0, rounds > 0, nodes >= 3, nodes <= 16, !sizes.isEmpty, sizes.allSatisfy({ $0 >= 2 && $0 <= 16 }) else {
            throw ValidationError("operations and rounds > 0, --nodes 3…16, --scaling sizes 2…16")
        }
        // The floor runs in child processes (`bench ring` pins the process
        // that runs it; the stores and this client must stay unpinned),
        // once per round, interleaved with the cluster series.
        var floors: [RingBenchReport] = []
        func measureFloor() throws {
            log("floor: flushed cache-line ping-pong between two processes")
            floors.append(try TransportBench.ringReport(messages: 20000))
        }

        log("starting a \(nodes)-node cluster")
        let dir = "/tmp/plenum-bench-cluster-\(getpid())"
        let config = try LocalCluster.start(nodes: nodes, memory: max(256, 3 * bandwidthMib) << 20, dir: dir, tag: "bench-\(getpid())")
        defer { LocalCluster.stop(config, dir: dir, removeRegions: true); try? FileManager.default.removeItem(atPath: dir) }
        try LocalCluster.waitReady(config, dir: dir, seconds: 30)
        let live = config.nodes.map(\.id)
        let c0 = try PlenumClient(socketPath: config.nodes[0].socket)
        if !socketOnly { try c0.useRings() }
        let c2 = try PlenumClient(socketPath: config.nodes[2].socket)
        if !socketOnly { try c2.useRings() }
        // Ids homed at node 1 and owned by node 2: a remote lookup from node 0
        // crosses one ring round trip, a remote get two (home, then owner).
        var serial = 0
        func freshID(home: NodeID?) -> ObjectID {
            while true {
                serial += 1
                var b = [UInt8](repeating: 0xB0, count: 20)
                withUnsafeBytes(of: UInt64(serial).bigEndian) { for i in 0..<8 { b[12 + i] = $0[i] } }
                let id = ObjectID(bytes: b)!
                if home == nil || Home.of(id, among: live) == home! { return id }
            }
        }
        let remoteIDs = (0..<256).map { _ in freshID(home: 1) }
        for id in remoteIDs { try c2.put(id, data: [1, 2, 3, 4]) }
        let localIDs = (0..<256).map { _ in freshID(home: 0) }
        for id in localIDs { try c0.put(id, data: [1, 2, 3, 4]) }

        // Barrier partners on the other nodes, in lockstep with node 0.
        let stopFlag = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        stopFlag.initialize(to: 0)
        defer { stopFlag.deallocate() }

        var h: [String: (remote: Histogram<UInt64>, local: Histogram<UInt64>)] = [:]
        let names = ["contains (lookup)", "get+release", "create+write+seal", "delete", "barrier (\(nodes) nodes)"]
        for n in names { h[n] = (.latency(), .latency()) }
        func time(_ hist: inout Histogram<UInt64>, _ body: () throws -> Void) rethrows {
            let t0 = monotonicNanos()
            try body()
            _ = hist.record(monotonicNanos() &- t0)
        }
        for round in 1...rounds {
            try measureFloor()
            log("round \(round)/\(rounds)")
            for i in 0..<operations {
                let r = remoteIDs[i % remoteIDs.count], l = localIDs[i % localIDs.count]
                try time(&h[names[0]]!.remote) { _ = try c0.contains(r) }
                try time(&h[names[0]]!.local) { _ = try c0.contains(l) }
            }
            for i in 0..<operations {
                let r = remoteIDs[i % remoteIDs.count], l = localIDs[i % localIDs.count]
                try time(&h[names[1]]!.remote) { if let b = try c0.get([r], timeoutMs: 0).first ?? nil { try c0.release(b) } }
                try time(&h[names[1]]!.local) { if let b = try c0.get([l], timeoutMs: 0).first ?? nil { try c0.release(b) } }
            }
            var made: [(ObjectID, ObjectID)] = []
            for _ in 0..<operations {
                let r = freshID(home: nil), l = freshID(home: nil)
                try time(&h[names[2]]!.remote) { try c0.put(r, data: [9, 9, 9, 9], onNode: 2) }
                try time(&h[names[2]]!.local) { try c0.put(l, data: [9, 9, 9, 9]) }
                made.append((r, l))
            }
            for (r, l) in made {
                try time(&h[names[3]]!.remote) { _ = try c0.delete([r]) }
                try time(&h[names[3]]!.local) { _ = try c0.delete([l]) }
            }
            let barriers = max(10, operations / 20)
            let sockets = config.nodes.dropFirst().map(\.socket)
            let threads = sockets.map { s in
                Thread {
                    guard let c = try? PlenumClient(socketPath: s) else { return }
                    if !socketOnly { try? c.useRings() }
                    for _ in 0..<barriers { _ = try? c.barrier(7) }
                }
            }
            threads.forEach { $0.start() }
            for _ in 0..<barriers { try time(&h[names[4]]!.remote) { _ = try c0.barrier(7) } }
            while threads.contains(where: { !$0.isFinished }) { usleep(1000) }
        }
        let ring = floors.sorted { $0.floor.flushedRttNs.p50 < $1.floor.flushedRttNs.p50 }[floors.count / 2]
        let floor = ring.floor.flushedRttNs
        var rows: [Row] = []
        for n in names {
            let r = LatencySummary(h[n]!.remote), l: LatencySummary? = h[n]!.local.totalCount > 0 ? LatencySummary(h[n]!.local) : nil
            let notes = ["one ring round trip node 0 → home (node 1); local: the object is in node 0",
                         "lookupAcquire at the home (node 1), forwarded to the owner (node 2), whose grant comes straight back; digest checked on every acquire; release is one-way",
                         "reserve at the home + allocate on node 2 + client writes through the link + seal on node 2",
                         "lookup at the home + checked delete at the owner (node 2)",
                         "all \(nodes) nodes' clients call it; coordinator = the name's home"]
            rows.append(Row(name: n, remote: r, local: l, remoteOverLocalP50: l.map { Double(r.p50) / Double(max(1, $0.p50)) },
                            remoteOverFloorP50: Double(r.p50) / Double(max(1, floor.p50)), note: notes[names.firstIndex(of: n)!]))
        }

        let breakdowns = trace > 0 ? try traceHops(config: config, c0: c0, remoteIDs: remoteIDs, freshID: freshID, names: names) : nil

        log("bandwidth: \(bandwidthMib) MiB read zero-copy from node 2's memory vs local memcpy")
        let size = bandwidthMib << 20
        let big = freshID(home: nil), mine = freshID(home: nil)
        try c2.put(big, data: [UInt8](repeating: 7, count: size))
        try c0.put(mine, data: [UInt8](repeating: 8, count: size))
        let priv = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
        defer { priv.deallocate() }
        var bw: [String: Double] = [:]
        var firstGet: UInt64 = 0
        do {
            let t0 = monotonicNanos()
            let b = try c0.get([big], timeoutMs: 0).first ?? nil
            firstGet = monotonicNanos() &- t0
            try c0.release(big)
            _ = b
        }
        var remoteRates: [Double] = [], localRates: [Double] = []
        for _ in 0..<5 {
            for (id, isRemote) in [(big, true), (mine, false)] {
                guard let b = try c0.get([id], timeoutMs: 0).first ?? nil else { throw CLIError("bandwidth object missing") }
                let t0 = monotonicNanos()
                try b.withData { priv.copyMemory(from: $0) }
                let dt = Double(monotonicNanos() &- t0)
                try c0.release(b)
                (isRemote ? { remoteRates.append(Double(size) / dt) } : { localRates.append(Double(size) / dt) })()
            }
        }
        let med = { (a: [Double]) in a.sorted()[a.count / 2] }
        bw["remote_zero_copy_read_gb_per_s"] = med(remoteRates)
        bw["local_memcpy_gb_per_s"] = med(localRates)
        bw["remote_over_local"] = med(remoteRates) / med(localRates)
        bw["first_remote_get_with_digest_check_ms"] = Double(firstGet) / 1e6
        LocalCluster.stop(config, dir: dir, removeRegions: true)

        var scalingP50: [String: UInt64] = [:]
        for n in sizes {
            log("lookup scaling: \(n) nodes")
            let sdir = dir + "-\(n)"
            let sc = try LocalCluster.start(nodes: n, memory: 16 << 20, dir: sdir, tag: "bench-\(getpid())-\(n)")
            defer { LocalCluster.stop(sc, dir: sdir, removeRegions: true); try? FileManager.default.removeItem(atPath: sdir) }
            try LocalCluster.waitReady(sc, dir: sdir, seconds: 60)
            let ids = sc.nodes.map(\.id)
            let a = try PlenumClient(socketPath: sc.nodes[0].socket)
            if !socketOnly { try a.useRings() }
            let b = try PlenumClient(socketPath: sc.nodes[1].socket)
            var picked: [ObjectID] = []
            var k = 0
            while picked.count < 64 {
                k += 1
                var bytes = [UInt8](repeating: 0xD0, count: 20)
                withUnsafeBytes(of: UInt64(k).bigEndian) { for i in 0..<8 { bytes[12 + i] = $0[i] } }
                let id = ObjectID(bytes: bytes)!
                if Home.of(id, among: ids) == 1 { picked.append(id) }
            }
            for id in picked { try b.put(id, data: [1]) }
            var hist = Histogram<UInt64>.latency()
            for i in 0..<(operations * rounds) { try time(&hist) { _ = try a.contains(picked[i % picked.count]) } }
            scalingP50["\(n)"] = LatencySummary(hist).p50
        }
        let lookup = rows[0].remote!.p50
        let met = Double(lookup) <= 8 * Double(floor.p50)
        let report = Report(nodes: nodes, operations: operations, rounds: rounds, floorFlushedRttNs: floor, floorFlushedP50PerRoundNs: floors.map(\.floor.flushedRttNs.p50), ringRttNs: ring.ring.rttNs,
                            rows: rows, bandwidth: bw, lookupP50NsByNodes: scalingP50,
                            lookupTarget: "remote lookup p50 ≤ 8 × flushed floor p50", lookupTargetMet: met, trace: breakdowns)
        if json {
            let e = JSONEncoder()
            e.keyEncodingStrategy = .convertToSnakeCase
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try e.encode(report), as: UTF8.self))
            return
        }
        func us(_ v: UInt64?) -> String { v.map { String(format: "%8.2f", Double($0) / 1000) } ?? "       -" }
        print("plenum bench cluster: \(nodes) nodes, \(operations) ops × \(rounds) rounds, \(socketOnly ? "socket clients" : "client rings"); times in µs")
        print("flushed cache-line floor p50 \(us(floor.p50))   ring round trip p50 \(us(ring.ring.rttNs.p50))")
        print("operation".padding(toLength: 24, withPad: " ", startingAt: 0) + "  remote p50  remote p99   local p50   local p99  remote/local  remote/floor")
        for r in rows {
            print(r.name.padding(toLength: 24, withPad: " ", startingAt: 0) + "    \(us(r.remote?.p50))    \(us(r.remote?.p99))    \(us(r.local?.p50))    \(us(r.local?.p99))"
                  + String(format: "  %10.2f  %12.2f", r.remoteOverLocalP50 ?? .nan, r.remoteOverFloorP50 ?? .nan))
        }
        print(String(format: "bandwidth: remote zero-copy read %.2f GB/s, local memcpy %.2f GB/s, ratio %.2f (first remote get incl. digest check %.1f ms)",
                     bw["remote_zero_copy_read_gb_per_s"]!, bw["local_memcpy_gb_per_s"]!, bw["remote_over_local"]!, bw["first_remote_get_with_digest_check_ms"]!))
        print("remote lookup p50 by cluster size: " + sizes.map { "\($0) nodes \(us(scalingP50["\($0)"]))" }.joined(separator: ", "))
        print("target remote lookup p50 ≤ 8 × floor: \(met ? "met" : "not met") (\(String(format: "%.2f", Double(lookup) / Double(max(1, floor.p50))))×)")
        if let breakdowns {
            print("\nwhere the time goes (hop trace, medians; node 0's client, ids homed at node 1, objects in node 2's memory):")
            for b in breakdowns { print(b.table()) }
        }
    }

    /// `--trace`: each node records its hops (SPEC §9.2 0x17) while node 0's
    /// client runs `trace` operations of each kind, one at a time, on ids
    /// homed at node 1 whose objects live in node 2's memory.
    func traceHops(config: ClusterConfig, c0: PlenumClient, remoteIDs: [ObjectID], freshID: (NodeID?) -> ObjectID,
                   names: [String]) throws -> [HopBreakdown] {
        log("tracing \(trace) operations of each kind hop by hop")
        let controls = try config.nodes.map { try PlenumClient(socketPath: $0.socket, rings: false, prefault: false) }
        var out: [HopBreakdown] = []
        func traced(_ name: String, _ body: (Int) throws -> Void) throws {
            for c in controls { _ = try c.hopTrace(on: true) }
            var ops: [HopBreakdown.Op] = []
            for i in 0..<trace {
                let t0 = monotonicNanos()
                try body(i)
                ops.append(.init(start: t0, end: monotonicNanos()))
            }
            var events: [NodeID: [HopEvent]] = [:]
            for (n, c) in zip(config.nodes, controls) {
                let (e, dropped) = try c.hopTrace(on: false)
                if dropped > 0 { log("node \(n.id): \(dropped) hop events not kept (trace fewer operations)") }
                events[n.id] = e
            }
            out.append(HopBreakdown.analyse(name: name, ops: ops, events: events, requester: 0, client: c0.hello.clientId))
        }
        try traced(names[0]) { i in _ = try c0.contains(remoteIDs[i % remoteIDs.count]) }
        try traced(names[1]) { i in if let b = try c0.get([remoteIDs[i % remoteIDs.count]], timeoutMs: 0).first ?? nil { try c0.release(b) } }
        var made: [ObjectID] = []
        try traced(names[2]) { _ in
            let id = freshID(1)
            try c0.put(id, data: [9, 9, 9, 9], onNode: 2)
            made.append(id)
        }
        try traced(names[3]) { i in _ = try c0.delete([made[i]]) }
        return out
    }
}
