import ArgumentParser
import Foundation
import Glibc
import Histogram
import PlenumBench
import PlenumClient
import PlenumCluster
import PlenumMemory
import PlenumStore

/// `plenum bench waiting` (SPEC §8, §10.1 "Waiting", §10.3 "No bells"): what
/// each way of waiting costs and buys, in one run beside the TCP and
/// flushed cache-line floors — remote lookups on a 4-node adaptive cluster
/// with bells and without (back to back, and with the stores idle between
/// operations), the CPU an idle cluster uses either way (from /proc), and
/// 2-node clusters with one store dedicated to a CPU of its own: the home,
/// and the asking store (the one on a lookup's path when the home's
/// directory index answers).
struct WaitingBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "waiting", abstract: "Adaptive with and without bells, idle CPU, a dedicated home or asking store: lookups beside the TCP and cache-line floors.")
    @Option(help: "Lookups per series.") var operations = 1000
    @Option(help: "Idle time between the lookups of the idle series (µs).") var gapUs = 1000
    @Option(help: "How long each idle cluster is watched for its CPU use (s).") var idleSeconds = 30
    @Flag var json = false

    struct Series: Codable {
        var name: String
        var note: String
        var lookupNs: LatencySummary
    }
    struct Report: Codable {
        var benchmark = "waiting"
        var operations: Int
        var gapUs: Int
        var idleSeconds: Int
        var floorFlushedRttNs: LatencySummary
        var tcpRttNs: LatencySummary
        var series: [Series]
        /// cluster → % of one CPU its stores used while idle.
        var idleCpuPercent: [String: Double]
        var targets: [String: Bool]
        var targetText: String
    }

    func log(_ s: String) { if !json { FileHandleStderr.write(s + "\n") } }

    /// utime + stime of a process (s), from /proc/PID/stat.
    static func cpuSeconds(_ pid: pid_t) -> Double {
        guard let d = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return 0 }
        let s = String(decoding: d, as: UTF8.self)
        guard let close = s.lastIndex(of: ")") else { return 0 }
        let fields = s[s.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let u = Double(fields[11]), let k = Double(fields[12]) else { return 0 }
        return (u + k) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// A local cluster (nodes, configured), its node-0 client, ids homed at node `home` and stored there.
    func start(_ name: String, nodes: Int, home: NodeID, configure: (inout ClusterConfig) -> Void) throws
        -> (config: ClusterConfig, dir: String, client: PlenumClient, ids: [ObjectID]) {
        let dir = "/tmp/plenum-bench-waiting-\(getpid())-\(name)"
        let config = try LocalCluster.start(nodes: nodes, memory: 32 << 20, dir: dir, tag: "bw-\(getpid())-\(name)", configure: configure)
        do {
            try LocalCluster.waitReady(config, dir: dir, seconds: 60)
            let ids = idsHomed(at: home, among: config.nodes.map(\.id), count: 64, fill: 0xBA)
            let owner = try PlenumClient(socketPath: config.node(home)!.socket)
            for id in ids { try owner.put(id, data: [1]) }
            let c = try PlenumClient(socketPath: config.nodes[0].socket)
            try c.useRings()
            // These series measure how stores wait: every lookup is a
            // request (a client that reads the index itself wakes no store,
            // SPEC §10.4 "Client peeks"; the dedicated home measures both).
            c.readsIndexes = false
            return (config, dir, c, ids)
        } catch {
            LocalCluster.stop(config, dir: dir, removeRegions: true)
            try? FileManager.default.removeItem(atPath: dir)
            throw error
        }
    }

    func lookups(_ c: PlenumClient, _ ids: [ObjectID], gapUs: Int) throws -> LatencySummary {
        var h = Histogram<UInt64>.latency()
        for i in 0..<operations {
            if gapUs > 0 { usleep(UInt32(gapUs)) }
            let t0 = monotonicNanos()
            guard try c.contains(ids[i % ids.count]) else { throw CLIError("lookup \(i) found nothing") }
            _ = h.record(monotonicNanos() &- t0)
        }
        return LatencySummary(h)
    }

    /// % of one CPU the cluster's stores use over `idleSeconds` of nothing.
    func idleCPU(_ config: ClusterConfig, dir: String) -> Double {
        let pids = config.nodes.compactMap { LocalCluster.pid(dir, $0.id) }
        let c0 = pids.map(Self.cpuSeconds), t0 = monotonicNanos()
        sleep(UInt32(idleSeconds))
        let used = zip(pids.map(Self.cpuSeconds), c0).reduce(0) { $0 + $1.0 - $1.1 }
        return 100 * used / (Double(monotonicNanos() &- t0) / 1e9)
    }

    func run() throws {
        guard operations > 0, gapUs >= 0, idleSeconds > 0 else { throw ValidationError("--operations and --idle-seconds > 0, --gap-us ≥ 0") }
        log("floors: flushed cache-line round trip, TCP round trip")
        let ring = try TransportBench.ringReport(messages: 20_000)
        var tcp = Histogram<UInt64>.latency()
        for s in try TransportBench.tcpRoundTrips(count: operations) { _ = tcp.record(s) }
        var series: [Series] = []
        var idle: [String: Double] = [:]
        for bells in [true, false] {
            let name = bells ? "adaptive, bells" : "adaptive, no bells"
            log("\(name): a 4-node cluster")
            let (config, dir, c, ids) = try start(bells ? "bells" : "nobells", nodes: 4, home: 2) { $0.bells = bells }
            defer { LocalCluster.stop(config, dir: dir, removeRegions: true); try? FileManager.default.removeItem(atPath: dir) }
            series.append(Series(name: "\(name): lookup, back to back", note: "node 0's client, ids homed at node 2", lookupNs: try lookups(c, ids, gapUs: 0)))
            series.append(Series(name: "\(name): lookup, stores idle \(gapUs) µs between", note: "the stores fall asleep between lookups",
                                 lookupNs: try lookups(c, ids, gapUs: gapUs)))
            log("\(name): the idle cluster's CPU over \(idleSeconds) s")
            idle[name] = idleCPU(config, dir: dir)
        }
        log("dedicated home: a 2-node cluster, node 1 dedicated to CPU 1; node 0 (adaptive) and this client pinned to CPU 0")
        let cpus = ProcessInfo.processInfo.activeProcessorCount
        if cpus >= 2 {
            let (config, dir, c, ids) = try start("dedicated", nodes: 2, home: 1) { cfg in
                cfg.nodes[0].cpu = 0
                cfg.nodes[1].wait = .dedicated
                cfg.nodes[1].cpu = 1
            }
            defer { LocalCluster.stop(config, dir: dir, removeRegions: true); try? FileManager.default.removeItem(atPath: dir) }
            try CPU.pin(to: 0)
            series.append(Series(name: "dedicated home: lookup via the store, back to back", note: "node 1 (the home) dedicated to CPU 1; node 0 adaptive and the client on CPU 0",
                                 lookupNs: try lookups(c, ids, gapUs: 0)))
            c.readsIndexes = true
            series.append(Series(name: "dedicated home: lookup, back to back", note: "the same cluster; the client reads the home's directory index itself (SPEC §10.4 \"Client peeks\")",
                                 lookupNs: try lookups(c, ids, gapUs: 0)))
        }
        // With the directory index (SPEC §10.4) a lookup never reaches the
        // home: the store on its path (every lookup a request here, see
        // `start`) is the asking one. Each store on a core
        // of its own, as in a deployment: the asking store dedicated, the
        // client on the other CPU (with the idle home).
        log("dedicated asking store: a 2-node cluster, node 0 dedicated to CPU 1; node 1 (the home, adaptive) and this client pinned to CPU 0")
        if cpus >= 2 {
            let (config, dir, c, ids) = try start("dedicated-asker", nodes: 2, home: 1) { cfg in
                cfg.nodes[0].wait = .dedicated
                cfg.nodes[0].cpu = 1
                cfg.nodes[1].cpu = 0
            }
            defer { LocalCluster.stop(config, dir: dir, removeRegions: true); try? FileManager.default.removeItem(atPath: dir) }
            try CPU.pin(to: 0)
            series.append(Series(name: "dedicated asking store: lookup, back to back",
                                 note: "node 0 (asks, reads the home's directory index) dedicated to CPU 1; node 1 (the home) adaptive and the client on CPU 0",
                                 lookupNs: try lookups(c, ids, gapUs: 0)))
        }
        let floor = ring.floor.flushedRttNs
        let tcpS = LatencySummary(tcp)
        func p(_ prefix: String) -> LatencySummary? { series.first { $0.name.hasPrefix(prefix) }?.lookupNs }
        func exactly(_ name: String) -> LatencySummary? { series.first { $0.name == name }?.lookupNs }
        var targets: [String: Bool] = [:]
        if let s = p("adaptive, no bells: lookup, stores idle") { targets["no bells, idle stores: lookup p99 ≤ 250 µs"] = s.p99 <= 250_000 }
        if let u = idle["adaptive, no bells"] { targets["no bells: idle 4-node cluster ≤ 2% of one CPU"] = u <= 2 }
        if let d = exactly("dedicated home: lookup, back to back") { targets["dedicated home: lookup p50 ≤ 10 × flushed floor"] = Double(d.p50) <= 10 * Double(floor.p50) }
        if let d = p("dedicated home: lookup via the store") {
            targets["dedicated home, every lookup a request to the store: p50 ≤ 10 × flushed floor"] = Double(d.p50) <= 10 * Double(floor.p50)
        }
        if let d = p("dedicated asking store") {
            targets["dedicated store on the lookup's path (the asking one, index): lookup p50 ≤ 10 × flushed floor"] = Double(d.p50) <= 10 * Double(floor.p50)
        }
        if let b = p("adaptive, bells: lookup, back") { targets["adaptive: lookup p50 ≤ 1.0 × TCP round trip"] = b.p50 <= tcpS.p50 }
        let report = Report(operations: operations, gapUs: gapUs, idleSeconds: idleSeconds, floorFlushedRttNs: floor, tcpRttNs: tcpS,
                            series: series, idleCpuPercent: idle, targets: targets,
                            targetText: "issue 22: no bells p99 ≤ 250 µs with idle stores, idle CPU ≤ 2%, dedicated home ≤ 10× floor")
        if json {
            let e = JSONEncoder()
            e.keyEncodingStrategy = .convertToSnakeCase
            e.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try e.encode(report), as: UTF8.self))
            return
        }
        func us(_ v: UInt64) -> String { String(format: "%8.2f", Double(v) / 1000) }
        print("plenum bench waiting: \(operations) lookups per series; µs")
        print("floors: flushed cache-line round trip p50 \(us(floor.p50)), TCP round trip (loopback) p50 \(us(tcpS.p50))")
        print("series".padding(toLength: 58, withPad: " ", startingAt: 0) + "     p50      p99   p50/TCP   p50/floor")
        for s in series {
            print(s.name.padding(toLength: 58, withPad: " ", startingAt: 0) + " \(us(s.lookupNs.p50)) \(us(s.lookupNs.p99))"
                  + String(format: "  %8.2f  %10.2f", Double(s.lookupNs.p50) / Double(max(1, tcpS.p50)), Double(s.lookupNs.p50) / Double(max(1, floor.p50))))
        }
        for (k, v) in idle.sorted(by: { $0.key < $1.key }) { print(String(format: "idle 4-node cluster, %@: %.2f%% of one CPU over %d s", k, v, idleSeconds)) }
        for (k, v) in targets.sorted(by: { $0.key < $1.key }) { print("target \(k): \(v ? "met" : "not met")") }
    }
}
