import PlenumCluster
import PlenumStore
import PlenumWire
import XCTest

final class ClusterCoreTests: XCTestCase {
    func location(_ r: StoreResponse?) -> ObjectLocation? {
        if case .objects(let ls)? = r { return ls.first ?? nil }
        return nil
    }

    func testRemoteGetIsZeroCopyReferenceCountedAndChecked() {
        var h = ClusterHarness(nodes: 3)
        for (c, n) in [(1, 0), (2, 2)] { h.connect(ClientID(c), on: NodeID(n)) }
        let id = oid(1)
        XCTAssertEqual(h.put(id, client: 1, on: 0), .sealed)
        let before = h.delivered
        let l = location(h.call(.get([id], timeoutMs: 0), client: 2, on: 2))
        XCTAssertNotNil(l)
        XCTAssertEqual(l?.region, 1, "node 0's memory, as node 2 numbers it")
        XCTAssertEqual(l?.offset, h.nodes[0].store.location(id)?.offset)
        XCTAssertLessThanOrEqual(h.delivered - before, 4, "lookup + acquire: two round trips")
        // The owner records node 2's reference: no delete, no eviction.
        guard case .deleted(let r)? = h.call(.delete([id]), client: 1, on: 0) else { return XCTFail() }
        XCTAssertEqual(r.first??.description.contains("in use"), true)
        XCTAssertEqual(h.call(.evict(bytes: 1 << 30), client: 1, on: 0), .evicted(bytes: 0))
        XCTAssertEqual(h.nodes[2].referencesHeld[0], 1)
        XCTAssertEqual(h.call(.release(id), client: 2, on: 2), .released)
        XCTAssertEqual(h.call(.delete([id]), client: 1, on: 0), .deleted([nil]))
        XCTAssertEqual(h.nodes[0].store.stats.used, 0)
        XCTAssertEqual(h.call(.contains(id), client: 2, on: 2), .contains(false))
        for n in h.nodes { XCTAssertNil(n.store.checkInvariants()) }
    }

    func testSealRepliesOnlyAfterTheHomeRecordedTheObject() {
        var h = ClusterHarness(nodes: 2)
        h.connect(1, on: 0)
        let id = (0..<100).map(oid).first { h.nodes[0].home(of: $0) == 1 }!
        guard case .created? = h.call(.create(id, dataSize: 8, metadataSize: 0), client: 1, on: 0) else { return XCTFail() }
        h.replies[0].removeAll()
        h.apply(0, h.nodes[0].handle(.local(.request(1, requestId: 9, .seal(id, digest: 1))), now: h.now))
        XCTAssertTrue(h.replies[0].isEmpty, "no reply before the home acknowledged the publish")
        h.settle()
        XCTAssertEqual(h.replies[0].first?.2, .sealed)
        XCTAssertEqual(h.nodes[1].directoryEntries, 1)
        // Delete waits the same way for the unpublish.
        h.replies[0].removeAll()
        h.apply(0, h.nodes[0].handle(.local(.request(1, requestId: 10, .delete([id]))), now: h.now))
        XCTAssertTrue(h.replies[0].isEmpty)
        h.settle()
        XCTAssertEqual(h.replies[0].first?.2, .deleted([nil]))
        XCTAssertEqual(h.nodes[1].directoryEntries, 0)
    }

    func testLookupCostIsIndependentOfClusterSize() {
        for count in [2, 4, 8] {
            var h = ClusterHarness(nodes: count)
            h.connect(1, on: 0)
            h.connect(2, on: 1)
            var worst = 0
            for k in 0..<20 {
                _ = h.put(oid(k), client: 1, on: 0)
                let before = h.delivered
                XCTAssertEqual(h.call(.contains(oid(k)), client: 2, on: 1), .contains(true))
                worst = max(worst, h.delivered - before)
            }
            XCTAssertLessThanOrEqual(worst, 2, "\(count) nodes: one round trip to the home")
        }
    }

    func testConcurrentCreatesOfOneIdHaveOneWinner() {
        var h = ClusterHarness(nodes: 4, capacity: 64 << 20)
        for n in 0..<4 { h.connect(ClientID(n + 1), on: NodeID(n)) }
        let ids = (0..<1000).map(oid)
        for (k, id) in ids.enumerated() {
            for n in 0..<4 {
                h.apply(NodeID(n), h.nodes[n].handle(.local(.request(ClientID(n + 1), requestId: UInt64(k + 1), .create(id, dataSize: 64, metadataSize: 0))), now: h.now))
            }
        }
        h.settle(limit: 10_000_000)
        var winners = [Int](repeating: 0, count: ids.count), losers = 0
        for n in 0..<4 {
            for (_, rid, r) in h.replies[n] {
                switch r {
                case .created: winners[Int(rid) - 1] += 1
                case .error(.alreadyExists): losers += 1
                default: XCTFail("\(r)")
                }
            }
        }
        XCTAssertEqual(winners, [Int](repeating: 1, count: ids.count))
        XCTAssertEqual(losers, 3000)
    }

    func testRemoteAllocationWhenLocalMemoryIsFull() {
        var h = ClusterHarness(nodes: 3, capacity: 64 << 10)
        h.connect(1, on: 0)
        h.connect(2, on: 2)
        XCTAssertEqual(h.put(oid(1), size: 60 << 10, client: 1, on: 0), .sealed)
        XCTAssertNotNil(location(h.call(.get([oid(1)], timeoutMs: 0), client: 1, on: 0)), "held: not evictable")
        // Node 0 is full; the object goes to a peer, written there by node 0's client.
        guard case .created(let l)? = h.call(.create(oid(2), dataSize: 32 << 10, metadataSize: 0), client: 1, on: 0) else { return XCTFail() }
        XCTAssertNotEqual(l.region, 0)
        let owner = NodeID(l.region - 1)
        XCTAssertNotNil(h.nodes[Int(owner)].store.location(oid(2)))
        XCTAssertEqual(h.call(.seal(oid(2), digest: 9), client: 1, on: 0), .sealed)
        XCTAssertEqual(h.invalidated[Int(owner)].count, 2, "the owner writes back its lines of the range before granting it, and drops them before sealing")
        XCTAssertNotNil(location(h.call(.get([oid(2)], timeoutMs: 0), client: 2, on: 2)))
        XCTAssertEqual(h.call(.release(oid(2)), client: 2, on: 2), .released)
        XCTAssertEqual(h.call(.release(oid(1)), client: 1, on: 0), .released)
        XCTAssertEqual(h.call(.delete([oid(2), oid(1)]), client: 2, on: 2), .deleted([nil, nil]))
        for n in h.nodes { XCTAssertEqual(n.store.stats.used, 0) }
    }

    func testCreateOnANamedNodeAndAbortOnDisconnect() {
        var h = ClusterHarness(nodes: 3)
        h.connect(1, on: 0)
        guard case .created(let l)? = h.call(.createOn(oid(5), dataSize: 10, metadataSize: 0, node: 2), client: 1, on: 0) else { return XCTFail() }
        XCTAssertEqual(l.region, 3)
        XCTAssertEqual(h.nodes[2].store.stats.objects, 1)
        h.apply(0, h.nodes[0].handle(.local(.disconnected(1)), now: h.now))
        h.settle()
        XCTAssertEqual(h.nodes[2].store.stats.objects, 0, "unsealed remote create aborted when its client left")
        h.connect(3, on: 1)
        XCTAssertEqual(h.put(oid(5), client: 3, on: 1), .sealed, "the reservation was released too")
    }

    func testSubscribersOnAnyNodeSeeSealsAndDeletes() {
        var h = ClusterHarness(nodes: 3)
        h.connect(1, on: 0)
        h.connect(2, on: 2)
        XCTAssertEqual(h.call(.subscribe, client: 2, on: 2), .subscribed)
        h.up(0, sees: 2)  // node 0 reads node 2's heartbeat: it has subscribers
        XCTAssertEqual(h.put(oid(3), client: 1, on: 0), .sealed)
        XCTAssertEqual(h.call(.delete([oid(3)]), client: 1, on: 0), .deleted([nil]))
        let seen = h.notes[2].map(\.1)
        XCTAssertEqual(seen.count, 2)
        if case .sealed(let id, let l) = seen.first { XCTAssertEqual(id, oid(3)); XCTAssertEqual(l.region, 1) } else { XCTFail() }
        XCTAssertEqual(seen.last, .deleted(oid(3)))
    }

    func testBarrierWaitsForEveryLiveNode() {
        var h = ClusterHarness(nodes: 4)
        for n in 0..<4 { h.connect(ClientID(n + 1), on: NodeID(n)) }
        for n in 0..<3 { XCTAssertNil(h.call(.barrier(name: 77), client: ClientID(n + 1), on: NodeID(n), rid: 9)) }
        XCTAssertEqual(h.call(.barrier(name: 77), client: 4, on: 3, rid: 9), .barrierPassed(nodes: 4))
        for n in 0..<3 { XCTAssertEqual(h.replies[n].first?.2, .barrierPassed(nodes: 4)) }
        // Second round; node 3 dies instead of arriving: the rest pass.
        for n in 0..<3 { h.replies[n].removeAll(); h.apply(NodeID(n), h.nodes[n].handle(.cluster(ClientID(n + 1), requestId: 10, .barrier(name: 77)), now: h.now)) }
        h.settle()
        XCTAssertTrue(h.replies[0].isEmpty)
        h.kill(3)
        for n in 0..<3 { XCTAssertEqual(h.replies[n].first?.2, .barrierPassed(nodes: 3), "node \(n)") }
    }

    func testDeadNodeReferencesAreDroppedAndItsObjectsForgotten() {
        var h = ClusterHarness(nodes: 3)
        h.connect(1, on: 0)
        h.connect(2, on: 1)
        h.connect(3, on: 2)
        XCTAssertEqual(h.put(oid(1), client: 1, on: 0), .sealed)
        XCTAssertEqual(h.put(oid(2), client: 2, on: 1), .sealed)
        XCTAssertNotNil(location(h.call(.get([oid(1)], timeoutMs: 0), client: 2, on: 1)))
        h.kill(1)
        XCTAssertEqual(h.call(.delete([oid(1)]), client: 1, on: 0), .deleted([nil]), "node 1's reference was dropped")
        XCTAssertEqual(h.call(.contains(oid(2)), client: 3, on: 2), .contains(false))
        XCTAssertNil(location(h.call(.get([oid(2)], timeoutMs: 0), client: 3, on: 2)))
        // Its ids are free again, and the survivors keep working.
        XCTAssertEqual(h.put(oid(2), client: 3, on: 2), .sealed)
        XCTAssertNotNil(location(h.call(.get([oid(2)], timeoutMs: 0), client: 1, on: 0)))
    }

    func testRequestsToADeadPeerFailWithAClearError() {
        var h = ClusterHarness(nodes: 2)
        h.connect(1, on: 0)
        // Find an id homed at node 1 and drop the link before it answers.
        let id = (0..<100).map(oid).first { h.nodes[0].home(of: $0) == 1 }!
        h.apply(0, h.nodes[0].handle(.local(.request(1, requestId: 5, .create(id, dataSize: 8, metadataSize: 0))), now: h.now))
        h.queues[1].removeAll()
        h.apply(0, h.nodes[0].handle(.peerDown(1, why: "heartbeat silent for 1000 ms"), now: h.now))
        guard case .error(.nodeUnavailable(1, let why))? = h.replies[0].first?.2 else { return XCTFail("\(h.replies[0])") }
        XCTAssertTrue(why.contains("heartbeat"))
        // Now node 0 is the only home: creates work locally.
        XCTAssertEqual(h.put(id, client: 1, on: 0), .sealed)
    }

    func testUnansweredRequestsTimeOut() {
        var h = ClusterHarness(nodes: 2)
        h.connect(1, on: 0)
        let id = (0..<100).map(oid).first { h.nodes[0].home(of: $0) == 1 }!
        h.apply(0, h.nodes[0].handle(.local(.request(1, requestId: 5, .contains(id))), now: h.now))
        h.queues[1].removeAll()   // a peer that never answers
        h.now += 6_000_000_000
        h.apply(0, h.nodes[0].handle(.local(.tick), now: h.now))
        guard case .error(.nodeUnavailable)? = h.replies[0].first?.2 else { return XCTFail() }
        XCTAssertEqual(h.nodes[0].counters.peerTimeouts, 1)
    }

    func testBlockingGetOnOneNodeIsWokenBySealOnAnother() {
        var h = ClusterHarness(nodes: 3)
        h.connect(1, on: 0)
        h.connect(2, on: 2)
        XCTAssertNil(h.call(.get([oid(9)], timeoutMs: 1000), client: 2, on: 2))
        XCTAssertEqual(h.put(oid(9), client: 1, on: 0), .sealed)
        h.settle()
        XCTAssertNotNil(location(h.replies[2].first { $0.0 == 2 }?.2))
        // And one that times out answers with nothing.
        h.replies[2].removeAll()
        XCTAssertNil(h.call(.get([oid(10)], timeoutMs: 50), client: 2, on: 2))
        h.now += 60_000_000
        h.apply(2, h.nodes[2].handle(.local(.tick), now: h.now))
        XCTAssertEqual(h.replies[2].first?.2, .objects([nil]))
    }

    func testDigestMismatchIsNeverDelivered() {
        var h = ClusterHarness(nodes: 2)
        h.connect(1, on: 0)
        h.connect(2, on: 1)
        XCTAssertEqual(h.put(oid(4), client: 1, on: 0), .sealed)
        h.digestOK = false
        XCTAssertEqual(h.call(.get([oid(4)], timeoutMs: 0), client: 2, on: 1), .objects([nil]))
        XCTAssertEqual(h.nodes[1].counters.digestMismatches, 1)
        XCTAssertEqual(h.call(.delete([oid(4)]), client: 1, on: 0), .deleted([nil]), "the reference was given back")
    }

    func testDisconnectReleasesRemoteReferences() {
        var h = ClusterHarness(nodes: 2)
        h.connect(1, on: 0)
        h.connect(2, on: 1)
        XCTAssertEqual(h.put(oid(4), client: 1, on: 0), .sealed)
        XCTAssertNotNil(location(h.call(.get([oid(4), oid(4)], timeoutMs: 0), client: 2, on: 1)))
        h.apply(1, h.nodes[1].handle(.local(.disconnected(2)), now: h.now))
        h.settle()
        XCTAssertEqual(h.call(.delete([oid(4)]), client: 1, on: 0), .deleted([nil]))
    }

    func testListCoversEveryNode() {
        var h = ClusterHarness(nodes: 3)
        for n in 0..<3 { h.connect(ClientID(n + 1), on: NodeID(n)) }
        for k in 0..<30 { XCTAssertEqual(h.put(oid(k), client: ClientID(k % 3 + 1), on: NodeID(k % 3)), .sealed) }
        guard case .list(let rows)? = h.call(.list, client: 1, on: 0) else { return XCTFail() }
        XCTAssertEqual(Set(rows.map(\.id)), Set((0..<30).map(oid)))
        XCTAssertEqual(rows.filter { $0.location.region == 0 }.count, 10)
    }

    func testOneWayReachLimitsWhereANodeCreatesAndReads() {
        // Node 1 cannot map node 0's memory (node 0 maps node 1's).
        var h = ClusterHarness(nodes: 2) { me, other in !(me == 1 && other == 0) }
        h.connect(1, on: 0)
        h.connect(2, on: 1)
        guard case .error(.nodeUnavailable)? = h.call(.createOn(oid(1), dataSize: 8, metadataSize: 0, node: 0), client: 2, on: 1) else { return XCTFail() }
        XCTAssertEqual(h.put(oid(2), client: 2, on: 1), .sealed)
        XCTAssertNotNil(location(h.call(.get([oid(2)], timeoutMs: 0), client: 1, on: 0)))
        XCTAssertEqual(h.put(oid(3), client: 1, on: 0), .sealed)
        XCTAssertEqual(h.call(.contains(oid(3)), client: 2, on: 1), .contains(true))
        XCTAssertEqual(h.call(.get([oid(3)], timeoutMs: 0), client: 2, on: 1), .objects([nil]))
    }

    func testLyingOwnerCannotHandOutMemoryOutsideItsRegion() {
        var h = ClusterHarness(nodes: 2)
        h.connect(2, on: 1)
        let id = oid(8)
        // Node 1 asks; a forged acquire reply points past node 0's region.
        h.apply(1, h.nodes[1].handle(.local(.request(2, requestId: 3, .get([id], timeoutMs: 0))), now: h.now))
        // Answer the lookup as node 0's directory would if it lied.
        var forged: [ClusterHarness.PeerLink] = []
        for m in h.queues[0] where m.kind == PeerMessage.Kind.lookup.rawValue {
            forged.append(.init(from: 0, to: 1, corr: m.corr, kind: PeerMessage.Kind.lookupReply.rawValue,
                                body: PeerMessage.lookupReply(.sealed, owner: 0, location: ObjectLocation(offset: 0, dataSize: 1, metadataSize: 0, reserved: 64), digest: 1).encodeBody()))
        }
        for m in h.queues[1] where m.kind == PeerMessage.Kind.lookup.rawValue {
            _ = m
        }
        let home = h.nodes[1].home(of: id)
        h.queues[Int(home)].removeAll()
        if home == 0 { h.queues[1] += forged } else {
            // Home is node 1 itself: it has no entry, so the get is simply empty.
            h.settle()
            XCTAssertEqual(h.replies[1].first?.2, .objects([nil]))
            return
        }
        h.settle()
        // The acquire went to node 0; replace its honest answer with a lie.
        let acquires = h.queues[0].filter { $0.kind == PeerMessage.Kind.acquire.rawValue }
        h.queues[0].removeAll()
        for a in acquires {
            h.queues[1].append(.init(from: 0, to: 1, corr: a.corr, kind: PeerMessage.Kind.acquireReply.rawValue,
                                     body: PeerMessage.acquireReply(code: 0, location: ObjectLocation(offset: 1 << 40, dataSize: 10, metadataSize: 0, reserved: 64), digest: 1).encodeBody()))
        }
        h.settle()
        XCTAssertEqual(h.replies[1].first?.2, .objects([nil]))
        XCTAssertGreaterThan(h.nodes[1].counters.refusedMessages, 0)
    }
}

extension ClusterCoreTests {
    func testARestartedNodeMeetsTheOthersAtTheNextBarrier() {
        var h = ClusterHarness(nodes: 3)
        for n in 0..<3 { h.connect(ClientID(n + 1), on: NodeID(n)) }
        for round in 0..<3 {
            for n in 0..<3 { h.apply(NodeID(n), h.nodes[n].handle(.cluster(ClientID(n + 1), requestId: UInt64(20 + round), .barrier(name: 5)), now: h.now)) }
            h.settle()
        }
        // Node 2 restarts: a fresh core, whose barrier count starts again.
        h.kill(2)
        var fresh = ClusterCore(config: .init(node: 2, incarnation: 999, reachable: [0, 1]), store: .init(base: 4096, capacity: 1 << 20, lineSize: 64))
        _ = fresh.handle(.local(.connected(3)), now: h.now)
        h.nodes[2] = fresh
        for i in 0..<2 { h.up(NodeID(i), sees: 2); h.up(2, sees: NodeID(i)) }
        h.settle()
        for n in 0..<3 { h.replies[n].removeAll(); h.apply(NodeID(n), h.nodes[n].handle(.cluster(ClientID(n + 1), requestId: 30, .barrier(name: 5)), now: h.now)) }
        h.settle()
        for n in 0..<3 { XCTAssertEqual(h.replies[n].first?.2, .barrierPassed(nodes: 3), "node \(n)") }
    }

    func testAGrantArrivingAfterItsRequestTimedOutIsGivenBack() {
        var h = ClusterHarness(nodes: 2)
        h.connect(1, on: 0)
        h.connect(2, on: 1)
        let id = (0..<100).map(oid).first { h.nodes[0].home(of: $0) == 1 }!
        XCTAssertEqual(h.put(id, client: 2, on: 1), .sealed)
        // Node 0 asks; node 1's answers are held back past the timeout.
        h.apply(0, h.nodes[0].handle(.local(.request(1, requestId: 4, .get([id], timeoutMs: 0))), now: h.now))
        while let i = h.queues.indices.first(where: { !h.queues[$0].isEmpty }), i == 1 { h.settle(limit: 1) }
        let late = h.queues[0]
        h.queues[0].removeAll()
        XCTAssertEqual(late.count, 1)   // the lookup reply
        h.queues[0] = late
        h.settle(limit: 1)              // lookup answered → acquire sent to node 1
        h.settle(limit: 1)              // node 1 grants: a reference for node 0
        let grant = h.queues[0]
        h.queues[0].removeAll()
        XCTAssertEqual(h.nodes[1].referencesLent[0], 1)
        h.now += 6_000_000_000
        h.apply(0, h.nodes[0].handle(.local(.tick), now: h.now))
        XCTAssertEqual(h.replies[0].last?.2, .objects([nil]))
        h.queues[0] = grant             // the grant arrives late
        h.settle()
        XCTAssertEqual(h.nodes[1].referencesLent[0], 0, "the late reference was released")
    }

    func testAWatchIsDroppedAtTheHomeWhenTheGetEnds() {
        var h = ClusterHarness(nodes: 2)
        h.connect(1, on: 0)
        let id = (0..<100).map(oid).first { h.nodes[0].home(of: $0) == 1 }!
        XCTAssertNil(h.call(.get([id], timeoutMs: 20), client: 1, on: 0))
        XCTAssertEqual(h.nodes[1].directoryWatches, 1)
        h.now += 30_000_000
        h.apply(0, h.nodes[0].handle(.local(.tick), now: h.now))
        h.settle()
        XCTAssertEqual(h.nodes[1].directoryWatches, 0)
    }

    func testARequestWithoutACorrelationIdIsRefusedWithoutEffect() {
        var h = ClusterHarness(nodes: 2)
        _ = h.nodes[1].handle(.message(from: 0, correlation: 0, .allocate(oid(1), dataSize: 100, metadataSize: 0)), now: h.now)
        _ = h.nodes[1].handle(.message(from: 0, correlation: 0, .reserve(oid(2))), now: h.now)
        XCTAssertEqual(h.nodes[1].store.stats.objects, 0)
        XCTAssertEqual(h.nodes[1].directoryEntries, 0)
        XCTAssertEqual(h.nodes[1].counters.refusedMessages, 2)
        // And a node that is not a live member is not heard at all.
        _ = h.nodes[1].handle(.message(from: 7, correlation: 5, .allocate(oid(1), dataSize: 100, metadataSize: 0)), now: h.now)
        XCTAssertEqual(h.nodes[1].store.stats.objects, 0)
    }
}

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

final class PeerMessageTests: XCTestCase {
    let l = ObjectLocation(offset: 4096, dataSize: 10, metadataSize: 2, reserved: 128, region: 3)

    func testEveryMessageRoundTrips() throws {
        let id = oid(1)
        let info = ObjectInfo(id: id, location: l, state: .sealed, refCount: 2, createdNanos: 5, constructNanos: 7, digest: 9)
        let all: [PeerMessage] = [
            .hello(incarnation: 5), .reserve(id), .unreserve(id), .unwatch(id), .publish(id, owner: 1, creator: 2, location: l, digest: 3),
            .unpublish(id, owner: 1), .lookup(id, watch: true), .lookupReply(.sealed, owner: 2, location: l, digest: 4),
            .published(id, owner: 1, location: l, digest: 2), .acquire(id), .acquireReply(code: 0, location: l, digest: 1),
            .release(id), .allocate(id, dataSize: 5, metadataSize: 6), .allocateReply(code: 10, location: l), .seal(id, digest: 8),
            .abort(id), .delete(id), .result(code: 5), .notifySealed(id, owner: 0, location: l, digest: 1), .notifyDeleted(id),
            .barrierArrive(name: 1, round: 2), .barrierRelease(name: 1, round: 2, nodes: 4), .list,
            .listChunk(Array(repeating: info, count: PeerMessage.listRowsPerChunk), last: true),
        ]
        for m in all {
            let body = m.encodeBody()
            XCTAssertLessThanOrEqual(body.count, 1024 - 32, "\(m.kind) fits a peer ring slot")
            XCTAssertEqual(try PeerMessage.decode(kind: m.kind.rawValue, body: body), m)
            // Every truncation and any trailing byte is refused.
            for cut in 0..<body.count { XCTAssertThrowsError(try PeerMessage.decode(kind: m.kind.rawValue, body: Array(body[0..<cut]))) }
            XCTAssertThrowsError(try PeerMessage.decode(kind: m.kind.rawValue, body: body + [0]))
        }
    }

    func testBadValuesAreRefused() {
        XCTAssertThrowsError(try PeerMessage.decode(kind: 0x7777, body: []))
        var lookup = PeerMessage.lookup(oid(1), watch: true).encodeBody()
        lookup[20] = 2
        XCTAssertThrowsError(try PeerMessage.decode(kind: PeerMessage.Kind.lookup.rawValue, body: lookup))
        var reply = PeerMessage.lookupReply(.sealed, owner: 0, location: l, digest: 0).encodeBody()
        reply[0] = 9
        XCTAssertThrowsError(try PeerMessage.decode(kind: PeerMessage.Kind.lookupReply.rawValue, body: reply))
        var chunk = PeerMessage.listChunk([], last: false).encodeBody()
        chunk[1] = 200
        XCTAssertThrowsError(try PeerMessage.decode(kind: PeerMessage.Kind.listChunk.rawValue, body: chunk))
        // A location whose end overflows.
        let huge = PeerMessage.acquireReply(code: 0, location: ObjectLocation(offset: Int.max - 4, dataSize: 10, metadataSize: 0, reserved: 0), digest: 0)
        XCTAssertThrowsError(try PeerMessage.decode(kind: PeerMessage.Kind.acquireReply.rawValue, body: huge.encodeBody()))
    }

    func testHomeIsStableAndMovesOnlyTheDeadNodesIds() {
        let ids = (0..<2000).map(oid)
        let four: [NodeID] = [0, 1, 2, 3]
        let three: [NodeID] = [0, 1, 3]
        var counts = [NodeID: Int]()
        for id in ids {
            let h4 = Home.of(id, among: four), h3 = Home.of(id, among: three)
            counts[h4, default: 0] += 1
            if h4 != 2 { XCTAssertEqual(h3, h4) }
        }
        for n in four { XCTAssertGreaterThan(counts[n] ?? 0, 350, "ids spread over homes") }
    }
}
