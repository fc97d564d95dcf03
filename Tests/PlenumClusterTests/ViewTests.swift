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

    /// An unreserve or unpublish is not judged by view: one that follows a
    /// parked reserve or publish of its sender takes it back, so the home,
    /// entering that view later, serves neither (simulator cluster seed 1585).
    func testAnUnreserveOrUnpublishTakesBackWhatItsSenderParked() throws {
        var h = ClusterHarness(nodes: 3)
        let newer = digest([0, 2])   // node 2 already saw node 1 die
        let ids = Array((0..<500).map(oid).filter { Home.of($0, among: [0, 2]) == 0 }.prefix(4))
        _ = h.nodes[0].handle(.message(from: 2, correlation: 0, .reserve(ids[0], view: newer)), now: h.now)
        _ = h.nodes[0].handle(.message(from: 2, correlation: 0, .reserve(ids[1], view: newer)), now: h.now)
        _ = h.nodes[0].handle(.message(from: 2, correlation: 0, .publish(ids[2], owner: 2, creator: 2, location: l, digest: 1, view: newer)), now: h.now)
        let acked = h.nodes[0].handle(.message(from: 2, correlation: 61, .publish(ids[3], owner: 2, creator: 2, location: l, digest: 1, view: newer)), now: h.now)
        XCTAssertTrue(acked.isEmpty, "parked: \(acked)")
        XCTAssertEqual(h.nodes[0].parkedCount, 4)
        _ = h.nodes[0].handle(.message(from: 2, correlation: 0, .unreserve(ids[0])), now: h.now)
        _ = h.nodes[0].handle(.message(from: 2, correlation: 0, .unpublish(ids[2], owner: 2)), now: h.now)
        let back = h.nodes[0].handle(.message(from: 2, correlation: 0, .unpublish(ids[3], owner: 2)), now: h.now)
        XCTAssertTrue(back.contains { if case .send(2, 61, .result(0)) = $0 { return true } else { return false } },
                      "the publish taken back is acknowledged, as a superseded one: \(back)")
        XCTAssertEqual(h.nodes[0].parkedCount, 1, "only the reserve of ids[1] still waits")
        // Node 0 enters that view and takes it over: only ids[1] is served.
        let c = h.nodes[0].handle(.peerDown(1, why: "test"), now: h.now)
        let epoch = try XCTUnwrap(c.lazy.compactMap { a -> UInt64? in if case .send(2, let e, .view(newer)) = a { return e } else { return nil } }.first)
        _ = h.nodes[0].handle(.message(from: 2, correlation: epoch, .rehomed(newer)), now: h.now)
        XCTAssertTrue(h.nodes[0].takenOver)
        XCTAssertEqual(h.nodes[0].parkedCount, 0)
        XCTAssertEqual(h.nodes[0].directorySnapshot.keys.sorted(), [ids[1]])
    }

    func testAReserveFromAViewTheHomeEntersLaterIsServedThenAndASupersededOneIsRefused() throws {
        var h = ClusterHarness(nodes: 3)
        // Node 2 already saw node 1 die; node 0 has not.
        let newer = digest([0, 2])
        let a = h.nodes[0].handle(.message(from: 2, correlation: 77, .reserve(oid(6), view: newer)), now: h.now)
        XCTAssertTrue(a.isEmpty, "parked, no answer yet: \(a)")
        let b = h.nodes[0].handle(.message(from: 2, correlation: 78, .reserve(oid(7), view: 12345)), now: h.now)
        XCTAssertTrue(b.isEmpty)
        XCTAssertEqual(h.nodes[0].parkedCount, 2)
        // A `rehomed` of node 2's from before node 0 entered that view does
        // not count (it does not echo node 0's announcement of it).
        _ = h.nodes[0].handle(.message(from: 2, correlation: 0, .rehomed(newer)), now: h.now)
        let c = h.nodes[0].handle(.peerDown(1, why: "test"), now: h.now)
        XCTAssertEqual(h.nodes[0].view, newer)
        XCTAssertFalse(h.nodes[0].takenOver)
        let epoch = try XCTUnwrap(c.lazy.compactMap { a -> UInt64? in if case .send(2, let e, .view(newer)) = a { return e } else { return nil } }.first,
                                  "peers hear of the new view, with its epoch: \(c)")
        XCTAssertFalse(c.contains { if case .send(2, 77, _) = $0 { return true } else { return false } }, "\(c)")
        // Node 2 answers the announcement (re-homing, then `rehomed`
        // echoing its epoch): node 0 has taken the view over, and the
        // reserve carrying it is served.
        let c2 = h.nodes[0].handle(.message(from: 2, correlation: epoch, .rehomed(newer)), now: h.now)
        XCTAssertTrue(h.nodes[0].takenOver)
        XCTAssertTrue(c2.contains { if case .send(2, 77, .result(0)) = $0 { return true } else { return false } }, "\(c2)")
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

    /// Handoff (SPEC §10.4): node 2, home of x, dies; node 0 sees it first
    /// and becomes x's home, while node 1 — which holds x, sealed — has not
    /// re-published it yet. A create of x on node 0 must wait for node 1's
    /// re-homing and then be refused; granting it at once made two objects
    /// with one id (simulator, cluster seed 4136).
    func testANewHomeGrantsNoReservationBeforeEveryPeerHasRehomed() throws {
        var h = ClusterHarness(nodes: 3)
        var probe = h
        probe.kill(2)
        let x = try XCTUnwrap((0..<2_000).map(oid).first { h.nodes[0].home(of: $0) == 2 && probe.nodes[0].home(of: $0) == 0 })
        h.connect(1, on: 1)
        XCTAssertEqual(h.put(x, client: 1, on: 1), .sealed)
        /// Delivers between nodes 0 and 1 only: node 2 is dead.
        func pump(_ h: inout ClusterHarness) {
            while true {
                h.queues[2].removeAll()
                guard let i = [0, 1].first(where: { !h.queues[$0].isEmpty }) else { return }
                let m = h.queues[i].removeFirst()
                guard m.from != 2 else { continue }
                guard let decoded = try? PeerMessage.decode(kind: m.kind, body: m.body) else { return XCTFail("undecodable message of kind \(m.kind)") }
                h.apply(NodeID(i), h.nodes[i].handle(.message(from: m.from, correlation: m.corr, decoded), now: h.now))
            }
        }
        h.apply(0, h.nodes[0].handle(.peerDown(2, why: "test"), now: h.now))
        pump(&h)
        XCTAssertEqual(h.nodes[0].home(of: x), 0)
        XCTAssertFalse(h.nodes[0].takenOver, "node 1 has not re-homed in node 0's new view")
        h.connect(5, on: 0)
        h.apply(0, h.nodes[0].handle(.local(.request(5, requestId: 9, .create(x, dataSize: 10, metadataSize: 0))), now: h.now))
        pump(&h)
        XCTAssertNil(h.replies[0].first { $0.0 == 5 && $0.1 == 9 }, "a new home must not judge a new reservation before it has taken over")
        // Node 1 sees the death too: it re-publishes x to its new home, then says `rehomed`.
        h.apply(1, h.nodes[1].handle(.peerDown(2, why: "test"), now: h.now))
        pump(&h)
        XCTAssertTrue(h.nodes[0].takenOver)
        let r = h.replies[0].first { $0.0 == 5 && $0.1 == 9 }?.2
        guard case .error(.alreadyExists)? = r else { return XCTFail("the create must be refused once node 1's x has arrived, got \(String(describing: r))") }
        XCTAssertEqual(h.call(.contains(x), client: 5, on: 0), .contains(true))
    }

    /// A reservation granted in a view the requester has left is given back
    /// (the new home may never learn of it) and the client told to retry.
    func testAGrantFromAViewTheRequesterLeftIsGivenBack() throws {
        var h = ClusterHarness(nodes: 3)
        let x = try XCTUnwrap((0..<2_000).map(oid).first { h.nodes[0].home(of: $0) == 1 })
        h.connect(5, on: 0)
        h.apply(0, h.nodes[0].handle(.local(.request(5, requestId: 9, .create(x, dataSize: 10, metadataSize: 0))), now: h.now))
        // Node 1 grants it, but before the answer arrives node 0 sees node 2 die.
        let reserve = h.queues[1].removeFirst()
        let grant = h.nodes[1].handle(.message(from: 0, correlation: reserve.corr, try PeerMessage.decode(kind: reserve.kind, body: reserve.body)), now: h.now)
        XCTAssertTrue(grant.contains { if case .send(0, reserve.corr, .result(0)) = $0 { return true } else { return false } }, "\(grant)")
        h.apply(0, h.nodes[0].handle(.peerDown(2, why: "test"), now: h.now))
        let answer = h.nodes[0].handle(.message(from: 1, correlation: reserve.corr, .result(code: 0)), now: h.now)
        XCTAssertTrue(answer.contains { if case .send(1, _, .unreserve(x)) = $0 { return true } else { return false } }, "given back: \(answer)")
        XCTAssertTrue(answer.contains { if case .local(.reply(5, 9, .error(.nodeUnavailable))) = $0 { return true } else { return false } }, "\(answer)")
    }

    /// A home whose peer never re-homes in its view (still in another view)
    /// does not keep a local create waiting for ever: at the request
    /// timeout it answers "membership changing … retry", and so does a
    /// create-and-seal batch's id homed there.
    func testACreateWaitingForATakeoverThatNeverComesFailsAtTheTimeout() throws {
        var h = ClusterHarness(nodes: 3)
        var probe = h
        probe.kill(2)
        let x = try XCTUnwrap((0..<2_000).map(oid).first { probe.nodes[0].home(of: $0) == 0 })
        let y = try XCTUnwrap((0..<2_000).map(oid).first { $0 != x && probe.nodes[0].home(of: $0) == 0 })
        // Node 0 sees node 2 die; node 1's rehomed for that view never comes.
        _ = h.nodes[0].handle(.peerDown(2, why: "test"), now: h.now)
        XCTAssertFalse(h.nodes[0].takenOver)
        h.connect(5, on: 0)
        let a = h.nodes[0].handle(.local(.request(5, requestId: 9, .create(x, dataSize: 10, metadataSize: 0))), now: h.now)
        XCTAssertFalse(a.contains { if case .local(.reply(5, 9, _)) = $0 { return true } else { return false } }, "it waits: \(a)")
        let b = h.nodes[0].handle(.reserveBatch(token: 3, ids: [y]), now: h.now)
        XCTAssertFalse(b.contains { if case .batchReserved = $0 { return true } else { return false } }, "it waits: \(b)")
        XCTAssertEqual(h.nodes[0].awaitingTakeoverCount, 2)
        let later = h.now + h.nodes[0].config.requestTimeout + 1
        let c = h.nodes[0].handle(.local(.tick), now: later)
        XCTAssertTrue(c.contains { if case .local(.reply(5, 9, .error(.nodeUnavailable))) = $0 { return true } else { return false } }, "\(c)")
        XCTAssertTrue(c.contains { if case .batchReserved(3, let r) = $0, case .nodeUnavailable? = r.first ?? nil { return true } else { return false } }, "\(c)")
        XCTAssertEqual(h.nodes[0].awaitingTakeoverCount, 0)
        XCTAssertEqual(h.nodes[0].directoryEntries, 0, "nothing was reserved")
    }

    /// A node restarted into a running cluster (SPEC §10.4 "Starting"): a
    /// new life of node 0, `awaiting` node 1, starts alone in its view, home
    /// of every id. Node 1 holds X. Before the two meet, a create of X on
    /// node 0 must not be granted; once they met and node 1 re-homed X to
    /// node 0, it is refused.
    func testARestartedNodeGrantsNoReservationBeforeItMetEveryPeer() throws {
        var h = ClusterHarness(nodes: 2)
        h.connect(5, on: 1)
        let x = try XCTUnwrap((0..<2_000).map(oid).first { h.nodes[0].home(of: $0) == 0 })
        XCTAssertEqual(h.put(x, client: 5, on: 1), .sealed)
        // Node 0 restarts: node 1 sees its old life end; the new one knows no one.
        h.queues[0].removeAll()
        h.apply(1, h.nodes[1].handle(.peerDown(0, why: "restarted"), now: h.now))
        h.settle()
        var config = ClusterCore.Config(node: 0, incarnation: 200, reachable: [1])
        config.awaiting = [1]
        h.nodes[0] = ClusterCore(config: config, store: .init(base: 4096, capacity: 1 << 20, lineSize: 64))
        h.connect(6, on: 0)
        XCTAssertEqual(h.nodes[0].home(of: x), 0, "alone, it is home of every id")
        XCTAssertFalse(h.nodes[0].takenOver)
        XCTAssertNil(h.call(.create(x, dataSize: 10, metadataSize: 0), client: 6, on: 0), "it waits for node 1")
        XCTAssertEqual(h.nodes[0].awaitingTakeoverCount, 1)
        // They meet: node 1 re-homes X to node 0, then says `rehomed`.
        h.apply(0, h.nodes[0].handle(.peerUp(1, PeerInfo(incarnation: 101, region: 2, regionSize: nil)), now: h.now))
        h.apply(1, h.nodes[1].handle(.peerUp(0, PeerInfo(incarnation: 200, region: 1, regionSize: nil)), now: h.now))
        h.settle()
        XCTAssertTrue(h.nodes[0].takenOver)
        XCTAssertEqual(h.nodes[0].unresolved, [])
        let answer = h.replies[0].first { $0.0 == 6 && $0.1 == 7 }?.2
        guard case .error(.alreadyExists)? = answer else { return XCTFail("X was granted twice: \(String(describing: answer))") }
    }

    /// A peer that never comes up is found absent after `dead_after_ms` of
    /// silence (the shell's `peerAbsent`): what waited goes on.
    func testAPeerFoundAbsentEndsTheWaitOfARestartedNode() throws {
        var config = ClusterCore.Config(node: 0, incarnation: 200, reachable: [1, 2])
        config.awaiting = [1, 2]
        var core = ClusterCore(config: config, store: .init(base: 4096, capacity: 1 << 20, lineSize: 64))
        _ = core.handle(.local(.connected(6)), now: 1)
        let a = core.handle(.local(.request(6, requestId: 1, .create(oid(3), dataSize: 10, metadataSize: 0))), now: 2)
        XCTAssertFalse(a.contains { if case .local(.reply(6, 1, _)) = $0 { return true } else { return false } }, "it waits: \(a)")
        XCTAssertEqual(core.unresolved, [1, 2])
        let b = core.handle(.peerAbsent(1), now: 3)
        XCTAssertTrue(b.isEmpty, "node 2 is still unresolved: \(b)")
        XCTAssertFalse(core.takenOver)
        let c = core.handle(.peerAbsent(2), now: 4)
        XCTAssertTrue(c.contains { if case .local(.reply(6, 1, .created)) = $0 { return true } else { return false } }, "\(c)")
        XCTAssertTrue(core.takenOver)
    }

    /// A view digest can recur (simulator cluster seed 14284): node 0 meets
    /// a new life of node 1 that node 2 never sees, dropping the entries no
    /// longer homed at node 0 — one node 2 published — and then loses it
    /// again: back in the view it left, while node 2 never moved. Node 2
    /// re-homes toward node 0 when node 0 announces a view, and node 0
    /// takes over only on a `rehomed` echoing its latest announcement; so
    /// node 2's object is known at node 0 again before node 0 judges a
    /// create of its id.
    func testAHomeBackInAViewItLeftGetsItsEntriesBackBeforeItJudgesACreate() throws {
        var h = ClusterHarness(nodes: 3)
        h.kill(1)
        var probe = h
        _ = probe.nodes[0].handle(.peerUp(1, PeerInfo(incarnation: 999, region: 2, regionSize: nil)), now: h.now)
        let x = try XCTUnwrap((0..<4_000).map(oid).first { h.nodes[0].home(of: $0) == 0 && probe.nodes[0].home(of: $0) == 1 })
        h.connect(5, on: 2)
        XCTAssertEqual(h.put(x, client: 5, on: 2), .sealed)
        XCTAssertEqual(h.nodes[0].directoryEntries, 1, "node 0 is x's home")
        // Node 0 alone meets node 1's new life, then loses it.
        let view = h.nodes[0].view
        h.apply(0, h.nodes[0].handle(.peerUp(1, PeerInfo(incarnation: 999, region: 2, regionSize: nil)), now: h.now))
        XCTAssertEqual(h.nodes[0].directoryEntries, 0, "x is no longer homed at node 0 in that view")
        h.apply(0, h.nodes[0].handle(.peerDown(1, why: "test"), now: h.now))
        h.queues[1].removeAll()
        XCTAssertEqual(h.nodes[0].view, view, "back in the view it left")
        XCTAssertFalse(h.nodes[0].takenOver, "node 2's rehomed of that view's last stint does not count")
        h.settle()
        XCTAssertTrue(h.nodes[0].takenOver)
        XCTAssertEqual(h.nodes[0].directoryEntries, 1, "node 2 re-published x to node 0")
        h.connect(6, on: 0)
        guard case .error(.alreadyExists)? = h.call(.create(x, dataSize: 10, metadataSize: 0), client: 6, on: 0) else {
            return XCTFail("x granted at node 0 while node 2 holds it")
        }
    }

    /// At the takeover a re-homing reserve (one-way: a reservation its
    /// sender already holds) is served before a new one (with a
    /// correlation), whichever sender's id is lower and whichever came
    /// first (simulator cluster seed 87416: node 1's new reserve was
    /// granted over node 2's re-homed reservation of the same id).
    func testAtTheTakeoverARehomingReserveWinsOverANewOne() throws {
        var h = ClusterHarness(nodes: 4)
        let a = h.nodes[0].handle(.peerDown(3, why: "test"), now: h.now)
        let v = h.nodes[0].view
        let epoch = try XCTUnwrap(a.lazy.compactMap { x -> UInt64? in if case .send(1, let e, .view(v)) = x { return e } else { return nil } }.first)
        let x = oid(42)
        // A new reserve from node 1, then node 2's re-homing of its own.
        XCTAssertTrue(h.nodes[0].handle(.message(from: 1, correlation: 77, .reserve(x, view: v)), now: h.now).isEmpty)
        XCTAssertTrue(h.nodes[0].handle(.message(from: 2, correlation: 0, .reserve(x, view: v)), now: h.now).isEmpty)
        XCTAssertEqual(h.nodes[0].parkedCount, 2)
        _ = h.nodes[0].handle(.message(from: 1, correlation: epoch, .rehomed(v)), now: h.now)
        let b = h.nodes[0].handle(.message(from: 2, correlation: epoch, .rehomed(v)), now: h.now)
        XCTAssertTrue(h.nodes[0].takenOver)
        XCTAssertTrue(b.contains { if case .send(1, 77, .result(1)) = $0 { return true } else { return false } }, "the new one is refused: \(b)")
        XCTAssertEqual(h.nodes[0].directoryEntries, 1)
        XCTAssertEqual(h.nodes[0].parkedCount, 0)
    }
}
