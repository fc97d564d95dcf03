import Foundation
import PlenumClient
import PlenumCluster
import PlenumStore
import Testing

/// Metrics (SPEC §10.9 "Metrics", issue 26): `plenum metrics` shows, for a
/// scripted workload, exactly what each node did; `--metrics-file` keeps a
/// file for node_exporter; promtool accepts the text where it is installed.
@Suite(.serialized) struct MetricsTests {
    static func homed(at home: NodeID, count: Int, tag: UInt8) -> [ObjectID] {
        Array((0..<100_000).lazy.map { cid($0, tag) }.filter { Home.of($0, among: [0, 1, 2]) == home }.prefix(count))
    }

    @Test func countersAgreeWithAScriptedWorkload() throws {
        let cluster = try TestCluster(nodes: 3)
        defer { cluster.stop() }
        let c0 = try cluster.client(0), c1 = try cluster.client(1)
        c0.readsIndexes = false      // the store answers every lookup (SPEC §10.4 "Client peeks")
        let size = 100
        // Node 0: five objects homed at node 0 in its own memory (no peer involved).
        let mine = Self.homed(at: 0, count: 5, tag: 0xB1)
        for id in mine { try c0.put(id, data: [UInt8](repeating: 1, count: size)) }
        // Node 1: six of its own; node 0 looks them up and reads three.
        let theirs = Self.homed(at: 1, count: 6, tag: 0xB2)
        for id in theirs { try c1.put(id, data: [UInt8](repeating: 2, count: size)) }
        for id in theirs { #expect(try c0.contains(id)) }
        for id in theirs.prefix(3) {
            let b = try #require(try c0.get([id], timeoutMs: 0).first ?? nil)
            try c0.release(b)
        }
        // A delete of an id nobody has, homed at node 0: an error, local.
        let missing = Self.homed(at: 0, count: 6, tag: 0xB1)[5]
        #expect(try c0.delete([missing]).first! != nil)

        let r = try PlenumProcess.run(["metrics", "--cluster", cluster.file], timeout: 60)
        #expect(r.status == 0, "\(r.stderr)")
        let m = MetricsText.samples(r.stdout)
        func op(_ node: Int, _ op: String, _ outcome: String, _ scope: String) -> Double? {
            m["plenum_operations_total{node=\"\(node)\",op=\"\(op)\",outcome=\"\(outcome)\",scope=\"\(scope)\"}"]
        }
        #expect(op(0, "create", "ok", "local") == 5 && op(0, "seal", "ok", "local") == 5, "\(r.stdout.split(separator: "\n").filter { $0.contains("operations_total") })")
        #expect(op(1, "create", "ok", "local") == 6 && op(1, "seal", "ok", "local") == 6, "\(r.stdout.split(separator: "\n").filter { $0.contains("operations_total") })")
        #expect(op(0, "contains", "ok", "remote") == 6, "lookups read node 1's index")
        #expect(op(0, "get", "ok", "remote") == 3 && op(0, "release", "ok", "remote") == 3)
        #expect(op(0, "delete", "error", "local") == 1)
        #expect(op(0, "create", "ok", "remote") == nil && op(2, "create", "ok", "local") == nil, "nothing else was counted")
        #expect(m["plenum_operation_duration_seconds_count{node=\"0\",op=\"contains\",scope=\"remote\"}"] == 6)
        #expect(m["plenum_operation_duration_seconds_bucket{node=\"0\",op=\"contains\",scope=\"remote\",le=\"+Inf\"}"] == 6)
        #expect(m["plenum_created_bytes_total{node=\"0\"}"] == Double(5 * size) && m["plenum_created_bytes_total{node=\"1\"}"] == Double(6 * size))
        #expect(m["plenum_read_bytes_total{node=\"0\"}"] == Double(3 * size))
        #expect(m["plenum_objects{node=\"0\"}"] == 5 && m["plenum_objects{node=\"1\"}"] == 6 && m["plenum_objects{node=\"2\"}"] == 0)
        #expect(m["plenum_directory_entries{node=\"1\"}"] == 6)
        #expect(m["plenum_directory_index_peeks_total{node=\"0\"}"] == 9, "six lookups and three gets")
        #expect(m["plenum_peer_up{node=\"0\",peer=\"2\"}"] == 1 && m["plenum_references_lent{node=\"1\",peer=\"0\"}"] == 0)
        #expect(m["plenum_memory_used_bytes{node=\"0\"}"].map { $0 > 0 } == true)
        // Every family once, whatever the number of nodes.
        let types = r.stdout.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }
        #expect(types.count == Set(types).count && types.contains("# TYPE plenum_operations_total counter"))
        // promtool, where Debian's prometheus package put it.
        if let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            let p = Process(), input = Pipe(), err = Pipe()
            p.executableURL = URL(fileURLWithPath: promtool)
            p.arguments = ["check", "metrics"]
            p.standardInput = input
            p.standardError = err
            p.standardOutput = err
            try p.run()
            input.fileHandleForWriting.write(Data(r.stdout.utf8))
            try input.fileHandleForWriting.close()
            let said = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(p.terminationStatus == 0, "promtool check metrics: \(said)")
        }
    }

    @Test func aMetricsFileIsKeptForTheTextfileCollectorAndRemovedAtStop() throws {
        let dir = "/tmp/plenum-metrics-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = ClusterConfig.local(nodes: 1, memory: 8 << 20, dir: dir, tag: "metrics-\(getpid())")
        try config.toml().write(toFile: dir + "/cluster.toml", atomically: true, encoding: .utf8)
        let file = dir + "/plenum.prom"
        let store = try PlenumProcess.Running(["store", "--cluster", dir + "/cluster.toml", "--node", "0", "--metrics-file", file])
        // Only while it runs: once reaped, its pid may be another process's.
        defer { if store.process.isRunning { kill(store.process.processIdentifier, SIGKILL) }; _ = store.finish(timeout: 30) }
        #expect(eventually(60) { ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").contains("plenum_objects{node=\"0\"} 0") })
        let c = try PlenumClient(socketPath: config.nodes[0].socket)
        try c.put(cid(1, 0xB3), data: [1])
        // Rewritten within a second or so: the new object shows.
        #expect(eventually(60) { ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").contains("plenum_objects{node=\"0\"} 1") })
        kill(store.process.processIdentifier, SIGTERM)
        #expect(store.finish(timeout: 60).status == 0)
        #expect(!FileManager.default.fileExists(atPath: file) && !FileManager.default.fileExists(atPath: file + ".tmp"))
    }
}
