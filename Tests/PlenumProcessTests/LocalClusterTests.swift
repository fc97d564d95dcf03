import Foundation
import PlenumClient
import PlenumCluster
import PlenumStore
import PlenumWire
import Testing

/// `plenum cluster up` / `down` as an operator uses them: independent local
/// clusters side by side, a node that cannot start reported at once.
@Suite(.serialized) struct LocalClusterTests {
    static func dir(_ name: String) -> String { "/tmp/plenum-lc-\(getpid())-\(name)" }

    static func config(_ dir: String) throws -> ClusterConfig {
        try ClusterConfig.parse(String(contentsOfFile: dir + "/cluster.toml", encoding: .utf8))
    }

    /// Every node of the cluster answers and sees its peers alive.
    static func serving(_ c: ClusterConfig) -> Bool {
        c.nodes.allSatisfy { n in
            guard let client = try? PlenumClient(socketPath: n.socket, rings: false), let text = try? client.clusterStatus(),
                  let doc = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
                  let peers = doc["peers"] as? [[String: Any]] else { return false }
            return peers.count == c.nodes.count - 1 && peers.allSatisfy { $0["alive"] as? Bool == true }
        }
    }

    @Test func twoLocalClustersRunSideBySideAndStopIndependently() throws {
        let a = Self.dir("a"), b = Self.dir("b")
        defer {
            for d in [a, b] {
                _ = try? PlenumProcess.run(["cluster", "down", "--dir", d], timeout: 60)
                try? FileManager.default.removeItem(atPath: d)
            }
        }
        for d in [a, b] {
            let up = try PlenumProcess.run(["cluster", "up", "--nodes", "2", "--memory", "16M", "--dir", d, "--dead-after-ms", "10000", "--wait", "120"])
            #expect(up.status == 0, "cluster up --dir \(d): \(up.stderr)")
        }
        let ca = try Self.config(a), cb = try Self.config(b)
        let regionsA = Set(ca.nodes.map(\.region)), regionsB = Set(cb.nodes.map(\.region))
        #expect(regionsA.isDisjoint(with: regionsB), "region names follow the directory: \(regionsA) \(regionsB)")
        #expect((regionsA.union(regionsB)).allSatisfy { access($0, F_OK) == 0 })
        #expect(Self.serving(ca) && Self.serving(cb))
        // An object on one cluster is not seen by the other.
        let id = ObjectID(bytes: [UInt8](repeating: 0xA1, count: 20))!
        try PlenumClient(socketPath: ca.nodes[0].socket).put(id, data: [1])
        #expect(try PlenumClient(socketPath: ca.nodes[1].socket).contains(id))
        #expect(try !PlenumClient(socketPath: cb.nodes[1].socket).contains(id))

        let down = try PlenumProcess.run(["cluster", "down", "--dir", a], timeout: 60)
        #expect(down.status == 0 && down.stdout.contains("2 node(s) stopped"), "\(down.stdout) \(down.stderr)")
        #expect(regionsA.allSatisfy { access($0, F_OK) != 0 }, "down removes its own regions")
        #expect(ca.nodes.allSatisfy { !UnixSocket.acceptsConnections($0.socket) })
        #expect(regionsB.allSatisfy { access($0, F_OK) == 0 }, "and leaves the other cluster's alone")
        #expect(Self.serving(cb), "the other cluster serves on")
        #expect(try PlenumProcess.run(["cluster", "down", "--dir", b], timeout: 60).status == 0)
        #expect(regionsB.allSatisfy { access($0, F_OK) != 0 })
    }

    /// Node 1's region lies in a directory that does not exist: `up` fails
    /// because node 1 exited (not because the wait ran out — the wait is far
    /// longer than this test lets it run), quotes node 1's reason, and stops
    /// node 0, which had started.
    @Test func aNodeThatCannotStartFailsClusterUpWithItsReasonAndLeavesNothingRunning() throws {
        let d = Self.dir("bad")
        try? FileManager.default.removeItem(atPath: d)
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        defer {
            _ = try? PlenumProcess.run(["cluster", "down", "--dir", d, "--file", d + "/bad.toml"], timeout: 60)
            try? FileManager.default.removeItem(atPath: d)
        }
        var config = ClusterConfig.local(nodes: 2, memory: 16 << 20, dir: d, tag: "lc-\(getpid())-bad")
        config.nodes[1].region = d + "/no-such-directory/node1.region"
        config.nodes[0].reach[1] = config.nodes[1].region
        let file = d + "/bad.toml"
        try config.toml().write(toFile: file, atomically: true, encoding: .utf8)
        let up = try PlenumProcess.run(["cluster", "up", "--file", file, "--dir", d, "--wait", "3600"], timeout: 600)
        #expect(up.status != 0)
        #expect(up.stderr.contains("node 1 exited during start"), "\(up.stderr)")
        #expect(up.stderr.contains("no-such-directory"), "the node's own reason is quoted: \(up.stderr)")
        #expect(!UnixSocket.acceptsConnections(config.nodes[0].socket), "node 0 was stopped")
        #expect(access(config.nodes[0].region, F_OK) != 0, "node 0 removed its region")
        #expect(access(d + "/node0.pid", F_OK) != 0)
    }
}
