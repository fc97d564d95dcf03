import ArgumentParser
import Foundation
import PlenumBench
import PlenumMemory
import PlenumClient
import PlenumRegion
import PlenumStore

/// The embedded default: a region in /dev/shm, two processes exchanging
/// messages through a pair of rings, a summary at the end.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Rings between two processes, then one store, then a 3-node cluster, all in /dev/shm; prints summaries.")
    @Option(help: "Messages each way.") var count: UInt64 = 200_000
    @Option(help: "Region file.") var region = "/dev/shm/plenum-demo.region"
    @Option var lineSize = LineSize.default
    @Option var slots = 256
    @Option var slotSize = 256
    @Flag(help: "Keep the region file afterwards.") var keep = false
    @Option(help: "Objects the store part puts and gets back.") var objects = 2000
    @Option(help: "Objects the cluster part creates on node 0 and reads on node 2.") var clusterObjects = 500
    @Flag var json = false

    func run() throws {
        let r = try PlenumBench.Exchange.prepare(path: region, slots: slots, slotSize: slotSize, lineSize: lineSize)
        defer { if !keep { unlink(region) } }
        if !json {
            print("region \(region): \(r.size) bytes, line size \(lineSize); rings a-to-b and b-to-a, \(slots) slots × \(slotSize) B")
            print("CPU: \(CPU.flushInstruction), hardware line \(CPU.hardwareLineSize) B; \(count) messages each way, flushes on")
        }
        let started = monotonicNanos()
        let children = try ["a", "b"].map { role in
            try Peer.Child(arguments: ["ring", "exchange", region, "--role", role, "--count", "\(count)", "--json"])
        }
        var reports: [PlenumBench.Exchange.Report] = []
        var failed = false
        for (role, child) in zip(["a", "b"], children) {
            let (status, output) = child.wait()
            let d = JSONDecoder(); d.keyDecodingStrategy = .convertFromSnakeCase
            if let line = output.split(separator: "\n").last, let rep = try? d.decode(PlenumBench.Exchange.Report.self, from: Data(line.utf8)) {
                reports.append(rep)
            } else {
                FileHandleStderr.write("process \(role) failed (exit \(status)): \(output)\n")
                failed = true
            }
            if status != 0 { failed = true }
        }
        let seconds = Double(monotonicNanos() - started) / 1e9
        if json {
            let e = JSONEncoder(); e.keyEncodingStrategy = .convertToSnakeCase; e.outputFormatting = [.sortedKeys]
            print(String(decoding: try e.encode(reports), as: UTF8.self))
        } else {
            for rep in reports {
                print("process \(rep.role.rawValue): sent \(rep.sent), received \(rep.check.received), lost \(rep.check.lost), duplicated \(rep.check.duplicated), reordered \(rep.check.reordered), corrupt \(rep.check.corrupt + rep.ringCorrupt), ring full \(rep.fullRetries)×, \(String(format: "%.2f", rep.seconds)) s")
            }
            let total = reports.reduce(0) { $0 + $1.check.received }
            print(String(format: "%llu messages delivered in %.2f s wall (%.0f msgs/s both ways, including process start)", total, seconds, Double(total) / seconds))
            print(failed ? "FAILED" : "OK: every message arrived once, in order, intact")
        }
        if failed { throw ExitCode(1) }
        if objects > 0 { try storeDemo() }
        if clusterObjects > 0 { try clusterDemo() }
    }

    /// Starts a 3-node local cluster (regions in /dev/shm), creates objects
    /// on node 0, reads them zero-copy through node 2, places one in node
    /// 1's memory from node 0, prints each node's view, stops the cluster.
    func clusterDemo() throws {
        let dir = "/tmp/plenum-demo-cluster-\(getpid())"
        let config = try LocalCluster.start(nodes: 3, memory: 64 << 20, dir: dir, tag: "demo-\(getpid())")
        defer { LocalCluster.stop(config, dir: dir, removeRegions: true); try? FileManager.default.removeItem(atPath: dir) }
        try LocalCluster.waitReady(config, dir: dir, seconds: 30)
        let c0 = try PlenumClient(socketPath: config.nodes[0].socket)
        let c2 = try PlenumClient(socketPath: config.nodes[2].socket)
        let started = monotonicNanos()
        var bytes = 0, mismatches = 0, remote = 0
        var ids: [(ObjectID, [UInt8])] = []
        for i in 0..<clusterObjects {
            var idBytes = [UInt8](repeating: 0xC0, count: 20)
            withUnsafeBytes(of: UInt32(i).bigEndian) { for k in 0..<4 { idBytes[16 + k] = $0[k] } }
            let data = (0..<(1 + (i * 7919) % 65536)).map { UInt8(truncatingIfNeeded: $0 &* 3 &+ i) }
            try c0.put(ObjectID(bytes: idBytes)!, data: data)
            ids.append((ObjectID(bytes: idBytes)!, data))
            bytes += data.count
        }
        for (id, data) in ids {
            guard let b = try c2.get([id], timeoutMs: 0).first ?? nil else { mismatches += 1; continue }
            if try b.data != data { mismatches += 1 }
            if b.region != 0 { remote += 1 }
            try c2.release(b)
        }
        let placed = ObjectID(bytes: [UInt8](repeating: 0xC1, count: 20))!
        try c0.put(placed, data: Array("written by node 0's client into node 1's memory".utf8), onNode: 1)
        let c1 = try PlenumClient(socketPath: config.nodes[1].socket)
        let back = try c1.get([placed], timeoutMs: 0).first??.data ?? []
        let seconds = Double(monotonicNanos() - started) / 1e9
        let listed = try c2.list().count
        if json {
            print(#"{"cluster":{"nodes":3,"objects":\#(clusterObjects),"bytes":\#(bytes),"read_on_other_node":\#(remote),"mismatches":\#(mismatches),"listed_from_node_2":\#(listed),"seconds":\#(seconds)}}"#)
        } else {
            print("cluster: 3 stores in /dev/shm (\(dir)); \(clusterObjects) objects (\(bytes) bytes) created on node 0, read on node 2 in \(String(format: "%.2f", seconds)) s: \(remote) zero-copy from node 0's memory, \(mismatches) mismatches; node 2 lists \(listed) objects")
            print("cluster: node 1 reads \"\(String(decoding: back, as: UTF8.self))\"")
            for n in config.nodes {
                if let text = try? PlenumClient(socketPath: n.socket, prefault: false).clusterStatus(),
                   let doc = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                   let m = doc["memory"] as? [String: Any], let msgs = doc["messages"] as? [String: Any] {
                    print("  node \(n.id): \(m["objects"] ?? 0) objects, \(m["used"] ?? 0) B used; peer messages in \(msgs["in"] ?? 0), out \(msgs["out"] ?? 0)")
                }
            }
            print(mismatches == 0 && back.count > 0 ? "OK: every object created on one node was read byte for byte on another" : "FAILED")
        }
        if mismatches > 0 || back.isEmpty { throw ExitCode(1) }
    }

    /// Starts a store daemon, puts and gets objects through the client
    /// library (zero-copy in its /dev/shm region), prints a summary, stops it.
    func storeDemo() throws {
        let socket = "/tmp/plenum-demo-\(getpid()).sock"
        let daemon = try Peer.Child(arguments: ["store", "--socket", socket, "--memory", "256M"])
        defer { daemon.kill(); _ = daemon.wait() }
        let deadline = monotonicNanos() + 20_000_000_000
        var client: PlenumClient?
        while client == nil {
            client = try? PlenumClient(socketPath: socket)
            if client == nil {
                guard monotonicNanos() < deadline else { throw CLIError("the store did not start on \(socket)") }
                usleep(20_000)
            }
        }
        let c = client!
        let started = monotonicNanos()
        var bytes = 0, mismatches = 0
        for i in 0..<objects {
            var idBytes = [UInt8](repeating: 0xD0, count: 20)
            withUnsafeBytes(of: UInt32(i).bigEndian) { for k in 0..<4 { idBytes[16 + k] = $0[k] } }
            let id = ObjectID(bytes: idBytes)!
            let size = 1 + (i * 7919) % 65536
            let data = (0..<size).map { UInt8(truncatingIfNeeded: $0 &+ i) }
            try c.put(id, data: data)
            guard let b = try c.get([id], timeoutMs: 0).first ?? nil else { mismatches += 1; continue }
            if try b.data != data { mismatches += 1 }
            try c.release(b)
            bytes += size
        }
        let stats = try c.stats()
        let listed = try c.list().count
        let seconds = Double(monotonicNanos() - started) / 1e9
        if json {
            print(#"{"store":{"objects":\#(objects),"bytes":\#(bytes),"mismatches":\#(mismatches),"listed":\#(listed),"used":\#(stats.used),"seconds":\#(seconds)}}"#)
        } else {
            print("store: put and got back \(objects) objects (\(bytes) bytes) through `plenum store` in \(String(format: "%.2f", seconds)) s; \(mismatches) mismatches; \(listed) listed, \(stats.used) bytes in use of \(stats.capacity)")
            print(mismatches == 0 ? "OK: every object read back byte for byte, zero-copy from the store's region" : "FAILED")
        }
        if mismatches > 0 { throw ExitCode(1) }
    }
}
