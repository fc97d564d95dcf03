import Foundation
import PlenumCluster
import Testing

/// `plenum cluster check` (issue 26): its plan is what the stores build,
/// and it refuses every file `plenum store --cluster` refuses, with the
/// same message.
@Suite(.serialized) struct ClusterCheckTests {
    static func json(_ text: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]
    }

    @Test func thePlanIsWhatTheStoresBuild() throws {
        // Node 2 maps only node 1 and nobody maps node 2 but node 1: a
        // one-way pair (1, 2), and 0 ⇄ 2 through the relay node 1.
        let cluster = try TestCluster(nodes: 3, reach: { a, b in !((a == 0 && b == 2) || (a == 2 && b == 0)) && !(a == 1 && b == 2) })
        defer { cluster.stop() }
        let r = try PlenumProcess.run(["cluster", "check", cluster.file, "--json", "--dot", cluster.dir + "/plan.dot"], timeout: 60)
        #expect(r.status == 0, "\(r.stderr)")
        let plan = try #require(Self.json(r.stdout), "\(r.stdout)")
        let nodes = try #require(plan["nodes"] as? [[String: Any]])
        #expect(nodes.count == 3)
        for n in nodes {
            let id = NodeID(n["id"] as? Int ?? -1)
            let bytes = try #require(n["region_bytes"] as? [String: Int])
            let path = try #require(n["region"] as? String)
            // The store's region: its size and its segments, as the plan says.
            let info = try PlenumProcess.run(["region", "info", path, "--json"], timeout: 60)
            let region = try #require(Self.json(info.stdout), "\(info.stderr)")
            #expect(region["size"] as? Int == bytes["total"], "node \(id): region size")
            let segments = (region["segments"] as? [[String: Any]] ?? []).reduce(into: [String: Int]()) { $0[$1["name"] as? String ?? ""] = $1["length"] as? Int }
            #expect(segments["objects"] == bytes["objects"] && segments["peer-links"] == bytes["peer_links"], "node \(id): \(segments) vs \(bytes)")
            #expect(segments["directory-index"] == ((bytes["directory_index"] ?? 0) > 0 ? bytes["directory_index"] : nil), "node \(id)")
            #expect(segments["cluster-view"] == ((bytes["cluster_view"] ?? 0) > 0 ? bytes["cluster_view"] : nil), "node \(id)")
            // The rings it hosts are the rings its peers attached to in its memory.
            let hosted = (n["rings_hosted"] as? [[String: Int]] ?? []).map { "\($0["producer"]!)→\($0["consumer"]!)" }
            let seen = (cluster.status(id)?["peers"] as? [[String: Any]] ?? []).flatMap { p -> [String] in
                [p["ring_in"], p["ring_out"]].compactMap { $0 as? [String: Any] }
                    .filter { $0["lives_in_node"] as? Int == Int(id) }.compactMap { ($0["pair"] as? String)?.replacingOccurrences(of: "->", with: "→") }
            }
            #expect(Set(hosted) == Set(seen), "node \(id) hosts \(hosted); its status shows \(seen)")
        }
        let relays = try #require(plan["relays"] as? [[String: Int]])
        #expect(Set(relays.map { "\($0["producer"]!)→\($0["consumer"]!) via \($0["via"]!)" }) == ["0→2 via 1", "2→0 via 1"])
        let dot = try String(contentsOfFile: cluster.dir + "/plan.dot", encoding: .utf8)
        #expect(dot.hasPrefix("digraph plenum {") && dot.contains("n1 -> n2 [label=\"ring in 1\"]") && dot.contains("relay via 1"), "\(dot)")
        let text = try PlenumProcess.run(["cluster", "check", cluster.file], timeout: 60)
        #expect(text.status == 0 && text.stdout.contains("0 ⇄ 2: none") && text.stdout.contains("1 ⇄ 2: one way (2 maps 1)"), "\(text.stdout)")
    }

    @Test func everyFileTheStoreRefusesIsRefusedWithItsMessage() throws {
        let dir = "/tmp/plenum-check-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let node = "[[node]]\nid = 0\nsocket = \"\(dir)/n0.sock\"\nregion = \"/dev/shm/plenum-check-\(getpid())-0.region\"\nmemory = \"16M\"\n"
        let bad = [
            "[cluster]\nline_size = 96\n" + node,
            "[cluster]\nring_slots = 100\n" + node,
            "[cluster]\ndirectory_index = -1\n" + node,
            "[cluster]\ndirectory_index = 99999999999\n" + node,
            "[cluster]\nheartbeat_ms = 50\ndead_after_ms = 60\n" + node,
            "[cluster]\nbogus = 1\n" + node,
            "[cluster]\nwait = \"sometimes\"\n" + node,
            "[cluster]\ntransport = \"carrier-pigeon\"\n" + node,
            node + node,
            node + "[node.reach]\n0 = \"/x\"\n",
            node + "[[node]]\nid = 1\nsocket = \"\(dir)/n1.sock\"\nregion = \"/r1\"\nmemory = \"16M\"\n",
            "[cluster\n" + node,
            "",
        ]
        for (i, text) in bad.enumerated() {
            let file = "\(dir)/bad\(i).toml"
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            let check = try PlenumProcess.run(["cluster", "check", file], timeout: 60)
            let store = try PlenumProcess.run(["store", "--cluster", file, "--node", "0"], timeout: 60)
            #expect(check.status != 0 && store.status != 0, "file \(i) accepted: \(text)")
            let message = { (s: String) in s.split(separator: "\n").first { $0.contains("cluster file") || $0.contains("Error") }.map(String.init) ?? s }
            #expect(!message(check.stderr).isEmpty && message(check.stderr) == message(store.stderr),
                    "file \(i): check said \(check.stderr), store said \(store.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: "/dev/shm/plenum-check-\(getpid())-0.region"))
    }
}
