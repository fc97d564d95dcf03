import PlenumCluster
import PlenumStore
import XCTest

/// Views (SPEC §10.4 "Views"): a home serves reserves and publishes only in
/// its own view; others are parked, served when it enters their view, and
/// superseded by their sender's next `view`.
final class ViewTests: XCTestCase {
    let l = ObjectLocation(offset: 4096, dataSize: 10, metadataSize: 0, reserved: 64, region: 0)

    /// Node 2's view after `ids` of its peers: digest of (node, incarnation 100 + node).
    func digest(_ ids: [NodeID]) -> UInt64 { ClusterCore.viewDigest(ids.map { ($0, UInt64(100 + $0)) }) }

    func testAllNodesOfAStableClusterShareOneViewAndItNamesItsMembers() {
        let h = ClusterHarness(nodes: 3)
        XCTAssertEqual(Set(h.nodes.map(\.view)).count, 1)
        XCTAssertEqual(h.nodes[0].view, digest([0, 1, 2]))
        XCTAssertNotEqual(digest([0, 1, 2]), digest([0, 2]))
        XCTAssertNotEqual(digest([0, 1]), ClusterCore.viewDigest([(0, 100), (1, 999)]), "a new incarnation is a new view")
    }

    func testAPublishFromAnotherViewIsParkedThenSupersededByItsSendersNextView() {
        var h = ClusterHarness(nodes: 3)
        let stale = digest([0, 2])   // node 2 has not met node 1 yet
        _ = h.nodes[0].handle(.message(from: 2, correlation: 0, .publish(oid(5), owner: 2, creator: 2, location: l, digest: 1, view: stale)), now: h.now)
        XCTAssertEqual(h.nodes[0].directoryEntries, 0, "not served outside its view")
        XCTAssertEqual(h.nodes[0].parkedCount, 1)
        // Node 2 moves on (it met node 1): the parked publish is dropped.
        _ = h.nodes[0].handle(.message(from: 2, correlation: 0, .view(h.nodes[0].view)), now: h.now)
        XCTAssertEqual(h.nodes[0].parkedCount, 0)
        XCTAssertEqual(h.nodes[0].directoryEntries, 0, "nothing of the stale view survives")
    }

    func testAReserveFromAViewTheHomeEntersLaterIsServedThenAndASupersededOneIsRefused() {
        var h = ClusterHarness(nodes: 3)
        // Node 2 already saw node 1 die; node 0 has not.
        let newer = digest([0, 2])
        let a = h.nodes[0].handle(.message(from: 2, correlation: 77, .reserve(oid(6), view: newer)), now: h.now)
        XCTAssertTrue(a.isEmpty, "parked, no answer yet: \(a)")
        let b = h.nodes[0].handle(.message(from: 2, correlation: 78, .reserve(oid(7), view: 12345)), now: h.now)
        XCTAssertTrue(b.isEmpty)
        XCTAssertEqual(h.nodes[0].parkedCount, 2)
        // Node 0 enters node 2's view: the reserve carrying it is served.
        let c = h.nodes[0].handle(.peerDown(1, why: "test"), now: h.now)
        XCTAssertEqual(h.nodes[0].view, newer)
        XCTAssertTrue(c.contains { if case .send(2, 77, .result(0)) = $0 { return true } else { return false } }, "\(c)")
        XCTAssertTrue(c.contains { if case .send(2, _, .view(newer)) = $0 { return true } else { return false } }, "peers hear of the new view")
        XCTAssertEqual(h.nodes[0].directoryEntries, 1)
        // Node 2 says it is in `newer`: the other one is superseded, refused with 13 (retry).
        let d = h.nodes[0].handle(.message(from: 2, correlation: 0, .view(newer)), now: h.now)
        XCTAssertTrue(d.contains { if case .send(2, 78, .result(13)) = $0 { return true } else { return false } }, "\(d)")
        XCTAssertEqual(h.nodes[0].parkedCount, 0)
    }

    func testViewZeroIsServedInAnyViewAsTheGRPCTransportsSendIt() {
        var h = ClusterHarness(nodes: 2)
        let a = h.nodes[0].handle(.message(from: 1, correlation: 9, .reserve(oid(8), view: 0)), now: h.now)
        XCTAssertTrue(a.contains { if case .send(1, 9, .result(0)) = $0 { return true } else { return false } }, "\(a)")
    }
}
