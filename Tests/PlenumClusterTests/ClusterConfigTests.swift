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

    /// SPEC §10.1 "Waiting" and §10.3 "No bells": wait, bells and cpu.
    func testWaitBellsAndCPUsAreReadAndChecked() throws {
        let plain = try ClusterConfig.parse(good)
        XCTAssertEqual(plain.wait, .adaptive)
        XCTAssertTrue(plain.bells)
        let dedicated = good.replacingOccurrences(of: "dead_after_ms = 800", with: "dead_after_ms = 800\nwait = \"dedicated\"\nbells = false")
        XCTAssertThrowsError(try ClusterConfig.parse(dedicated)) { XCTAssertTrue("\($0)".contains("node 0 needs cpu = N"), "\($0)") }
        let pinned = dedicated.replacingOccurrences(of: "numa_node = 0", with: "numa_node = 0\ncpu = 1")
            .replacingOccurrences(of: "memory = 1_048_576", with: "memory = 1_048_576\ncpu = 0")
        let c = try ClusterConfig.parse(pinned)
        XCTAssertEqual(c.wait, .dedicated)
        XCTAssertFalse(c.bells)
        XCTAssertEqual(c.nodes.map(\.cpu), [1, 0])
        XCTAssertEqual(try ClusterConfig.parse(c.toml()), c)
        XCTAssertThrowsError(try ClusterConfig.parse(pinned.replacingOccurrences(of: "cpu = 0", with: "cpu = 1"))) {
            XCTAssertTrue("\($0)".contains("nodes 0 and 1 both name cpu = 1"), "\($0)")
        }
        XCTAssertThrowsError(try ClusterConfig.parse(pinned.replacingOccurrences(of: "cpu = 0", with: "cpu = -3"))) { XCTAssertTrue("\($0)".contains("not a CPU number"), "\($0)") }
        XCTAssertThrowsError(try ClusterConfig.parse(pinned.replacingOccurrences(of: "cpu = 0", with: "cpu = \"0\""))) { XCTAssertTrue("\($0)".contains("cpu must be an integer"), "\($0)") }
        XCTAssertThrowsError(try ClusterConfig.parse(good.replacingOccurrences(of: "dead_after_ms = 800", with: "wait = \"spin\""))) {
            XCTAssertTrue("\($0)".contains("\"adaptive\", \"dedicated\""), "\($0)")
        }
        XCTAssertThrowsError(try ClusterConfig.parse(good.replacingOccurrences(of: "dead_after_ms = 800", with: "bells = 0"))) { XCTAssertTrue("\($0)".contains("true or false"), "\($0)") }
        // One node may wait its own way (a dedicated home beside adaptive peers).
        let one = good.replacingOccurrences(of: "numa_node = 0", with: "numa_node = 0\nwait = \"dedicated\"\ncpu = 1")
        let mixed = try ClusterConfig.parse(one)
        XCTAssertEqual([mixed.waitMode(of: 0), mixed.waitMode(of: 1)], [.dedicated, .adaptive])
        XCTAssertEqual(try ClusterConfig.parse(mixed.toml()), mixed)
        XCTAssertThrowsError(try ClusterConfig.parse(one.replacingOccurrences(of: "cpu = 1", with: ""))) { XCTAssertTrue("\($0)".contains("node 0 needs cpu = N"), "\($0)") }
        XCTAssertThrowsError(try ClusterConfig.parse(one.replacingOccurrences(of: "wait = \"dedicated\"", with: "wait = \"fast\""))) { XCTAssertTrue("\($0)".contains("node 0: wait must be one of"), "\($0)") }
        // An adaptive node may name a cpu (its loop is pinned) and needs none.
        XCTAssertEqual(try ClusterConfig.parse(good.replacingOccurrences(of: "numa_node = 0", with: "numa_node = 0\ncpu = 3")).nodes[0].cpu, 3)
    }

    /// The loop's decision (SPEC §10.1 "Waiting"): never a PAUSE in adaptive
    /// mode by default, a longer window while an answer is expected, an idle
    /// poll only with bells off, and dedicated never sleeps.
    func testTheWaitPolicyDecidesAsTheSpecSays() {
        let a = WaitPolicy(mode: .adaptive, bells: true)
        XCTAssertEqual(a.step(idleFor: 0, expecting: false, peers: true), .yield)
        XCTAssertEqual(a.step(idleFor: 99_999, expecting: false, peers: true), .yield)
        XCTAssertEqual(a.step(idleFor: 100_000, expecting: false, peers: true), .sleep(pollAfter: nil))
        XCTAssertEqual(a.step(idleFor: 150_000, expecting: true, peers: true), .yield)
        XCTAssertEqual(a.step(idleFor: 200_000, expecting: true, peers: true), .sleep(pollAfter: nil))
        var spinning = a
        spinning.busySpin = 5_000
        XCTAssertEqual(spinning.step(idleFor: 4_999, expecting: false, peers: true), .spin)
        let quiet = WaitPolicy(mode: .adaptive, bells: false)
        XCTAssertEqual(quiet.step(idleFor: 100_000, expecting: false, peers: true), .sleep(pollAfter: 20_000))
        XCTAssertEqual(quiet.step(idleFor: 800_000, expecting: false, peers: true), .sleep(pollAfter: 100_000))
        XCTAssertEqual(quiet.step(idleFor: 1 << 40, expecting: false, peers: true), .sleep(pollAfter: WaitPolicy.idlePollMax))
        XCTAssertEqual(quiet.step(idleFor: 1 << 40, expecting: false, peers: false), .sleep(pollAfter: nil), "no links, nothing to poll")
        let d = WaitPolicy(mode: .dedicated, bells: false)
        for idle: UInt64 in [0, 1_000_000, 1 << 50] { XCTAssertEqual(d.step(idleFor: idle, expecting: false, peers: true), .spin) }
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
