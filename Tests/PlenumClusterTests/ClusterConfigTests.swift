import PlenumCluster
import PlenumStore
import PlenumWire
import XCTest

final class ClusterConfigTests: XCTestCase {
    let good = """
    # a comment
    [cluster]
    line_size = 128
    dead_after_ms = 800

    [[node]]
    id = 0
    socket = "/tmp/a.sock"
    region = "/dev/shm/a"
    memory = "64M"
    numa_node = 0
    [node.reach]
    1 = "/dev/shm/b"

    [[node]]
    id = 1
    socket = "/tmp/b.sock"   # trailing comment
    region = "/dev/shm/b"
    memory = 1_048_576
    """

    func testTheFileRoundTripsAndPlacesRingsInSharedMemory() throws {
        let c = try ClusterConfig.parse(good)
        XCTAssertEqual(c.nodes.count, 2)
        XCTAssertEqual(c.nodes[0].memory, 64 << 20)
        XCTAssertEqual(c.nodes[0].numaNode, 0)
        XCTAssertEqual(c.deadAfterMillis, 800)
        XCTAssertEqual(c.nodes[0].reach, [1: "/dev/shm/b"])
        XCTAssertEqual(try ClusterConfig.parse(c.toml()), c)
        // One-way reach: both rings of the pair in node 1's memory.
        let plan = try RingPlan(c)
        XCTAssertEqual(plan.site(from: 0, to: 1)?.host, 1)
        XCTAssertEqual(plan.site(from: 1, to: 0)?.host, 1)
        let local = ClusterConfig.local(nodes: 4, memory: 1 << 20, dir: "/tmp/x", tag: "t")
        let lp = try RingPlan(local)
        for p in 0..<4 { for q in 0..<4 where p != q { XCTAssertEqual(lp.site(from: NodeID(p), to: NodeID(q))?.host, NodeID(q), "the consumer's memory") } }
    }

    /// SPEC §10.11: the transport key, and a gRPC address on every node.
    func testTheTransportAndGRPCAddressesAreReadAndChecked() throws {
        XCTAssertEqual(try ClusterConfig.parse(good).transport, .rings)
        let grpc = good.replacingOccurrences(of: "dead_after_ms = 800", with: "dead_after_ms = 800\ntransport = \"grpc-stream\"")
        let both = grpc.replacingOccurrences(of: "numa_node = 0", with: "numa_node = 0\ngrpc = \"127.0.0.1:7400\"")
            .replacingOccurrences(of: "memory = 1_048_576", with: "memory = 1_048_576\ngrpc = \"10.0.0.2:7401\"")
        let c = try ClusterConfig.parse(both)
        XCTAssertEqual(c.transport, .grpcStream)
        XCTAssertEqual(c.nodes.map(\.grpc), ["127.0.0.1:7400", "10.0.0.2:7401"])
        XCTAssertEqual(try ClusterConfig.parse(c.toml()), c)
        XCTAssertThrowsError(try ClusterConfig.parse(grpc)) { XCTAssertTrue("\($0)".contains("needs grpc = \"host:port\" on every [[node]] (node 0 has none)"), "\($0)") }
        XCTAssertThrowsError(try ClusterConfig.parse(both.replacingOccurrences(of: ":7401", with: ":70000"))) { XCTAssertTrue("\($0)".contains("is not host:port"), "\($0)") }
        XCTAssertThrowsError(try ClusterConfig.parse(good.replacingOccurrences(of: "dead_after_ms = 800", with: "transport = \"grpc\""))) {
            XCTAssertTrue("\($0)".contains("\"rings\", \"grpc-unary\", \"grpc-stream\""), "\($0)")
        }
        XCTAssertThrowsError(try ClusterConfig.parse(good.replacingOccurrences(of: "dead_after_ms = 800", with: "transport = 1")))
        let local = ClusterConfig.local(nodes: 3, memory: 1 << 20, dir: "/tmp/x", tag: "t", transport: .grpcUnary, grpcPortBase: 9000)
        XCTAssertEqual(local.nodes.map(\.grpc), ["127.0.0.1:9000", "127.0.0.1:9001", "127.0.0.1:9002"])
        XCTAssertNoThrow(try local.validate())
    }

    func testPairsThatShareNoMemoryGetARelayOrAreRefused() throws {
        var c = ClusterConfig.local(nodes: 4, memory: 1 << 20, dir: "/tmp/x", tag: "t")
        // 0 and 3 share nothing; 1 and 2 share memory with both: 1 relays.
        c.nodes[0].reach[3] = nil
        c.nodes[3].reach[0] = nil
        let plan = try RingPlan(c)
        XCTAssertNil(plan.site(from: 0, to: 3))
        XCTAssertEqual(plan.relay(from: 0, to: 3), 1)
        XCTAssertEqual(plan.relay(from: 3, to: 0), 1)
        XCTAssertNil(plan.relay(from: 0, to: 1))
        // Node 3 shares memory with nobody: refused, naming a pair.
        for n in 0..<3 { c.nodes[n].reach[3] = nil }
        c.nodes[3].reach = [:]
        XCTAssertThrowsError(try RingPlan(c)) { e in XCTAssertTrue("\(e)".contains("share no memory"), "\(e)") }
    }

    func testBadFilesAreRefusedWithTheReason() {
        func refused(_ text: String, _ needle: String, line: UInt = #line) {
            XCTAssertThrowsError(try ClusterConfig.parse(text), line: line) { e in
                XCTAssertTrue("\(e)".contains(needle), "\(e)", line: line)
            }
        }
        refused(good.replacingOccurrences(of: "[node.reach]\n1 = \"/dev/shm/b\"", with: ""), "share no memory")
        refused(good.replacingOccurrences(of: "id = 1", with: "id = 0"), "appears twice")
        refused(good.replacingOccurrences(of: "1 = \"/dev/shm/b\"", with: "5 = \"/dev/shm/b\""), "not in the file")
        refused(good.replacingOccurrences(of: "line_size = 128", with: "line_size = 100"), "line_size")
        refused(good.replacingOccurrences(of: "memory = \"64M\"", with: "memory = \"lots\""), "cannot read size")
        refused(good.replacingOccurrences(of: "socket = \"/tmp/a.sock\"", with: "socket = /tmp/a.sock"), "line 8")
        refused(good + "\n[[pool]]\nid = 3\n", "pool")
        refused(good + "\ncolour = 3\n", "unknown key")
        refused(good.replacingOccurrences(of: "dead_after_ms = 800", with: "dead_after_ms = 60"), "two heartbeats")
        refused(good.replacingOccurrences(of: "numa_node = 0", with: "numa_node = \"zero\""), "numa_node")
        refused("[cluster]\n", "no [[node]]")
        refused("[[node]]\nid = \"x", "unterminated")
    }
}
