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

    /// The shell's short path for `contains` gives handle's answer when it
    /// needs no message, and none while the client's replies are held
    /// behind an acknowledgement (it would overtake them).
    func testContainsAtOnceAnswersAsHandleWouldAndKeepsReplyOrder() {
        var h = ClusterHarness(nodes: 2)
        h.connect(1, on: 0)
        h.connect(2, on: 0)
        let ids = (0..<100).map(oid)
        let homedHere = ids.first { h.nodes[0].home(of: $0) == 0 }!
        let homedThere = ids.filter { h.nodes[0].home(of: $0) == 1 }
        XCTAssertEqual(h.nodes[0].containsAtOnce(homedHere, for: 1), false, "its home's directory: absent")
        XCTAssertNil(h.nodes[0].containsAtOnce(homedThere[0], for: 1), "no index to read: the home is asked")
        XCTAssertEqual(h.call(.contains(homedThere[0]), client: 1, on: 0), .contains(false))
        XCTAssertEqual(h.put(homedThere[0], client: 1, on: 0), .sealed)
        XCTAssertEqual(h.nodes[0].containsAtOnce(homedThere[0], for: 1), true, "sealed here")
        XCTAssertEqual(h.call(.contains(homedThere[0]), client: 1, on: 0), .contains(true))
        // Client 1's seal of another object waits for the home's acknowledgement.
        guard case .created? = h.call(.create(homedThere[1], dataSize: 8, metadataSize: 0), client: 1, on: 0) else { return XCTFail() }
        h.apply(0, h.nodes[0].handle(.local(.request(1, requestId: 9, .seal(homedThere[1], digest: 1))), now: h.now))
        XCTAssertNil(h.nodes[0].containsAtOnce(homedThere[0], for: 1), "client 1's replies are held: this one waits behind them")
        XCTAssertEqual(h.nodes[0].containsAtOnce(homedThere[0], for: 2), true, "client 2's are not")
        h.settle()
        XCTAssertEqual(h.nodes[0].containsAtOnce(homedThere[0], for: 1), true)
        XCTAssertNil(h.nodes[0].containsAtOnce(homedThere[0], for: ClusterCore.peerBit | 1), "a pseudo-client's request is the core's")
    }

    /// The Plasma handler's short paths (issue 25): a get of ids all sealed
    /// here and a release that only counts down give exactly `handle`'s
    /// reply and leave the same references; anything else is `handle`'s.
    func testGetAndReleaseAtOnceAreWhatHandleDoes() {
        var h = ClusterHarness(nodes: 2)
        h.connect(1, on: 0)
        h.connect(2, on: 0)
        let ids = (0..<40).map(oid)
        let mine = Array(ids.prefix(6))
        let homedThere = ids.filter { h.nodes[0].home(of: $0) == 1 && !mine.contains($0) }
        for id in mine { XCTAssertEqual(h.put(id, client: 1, on: 0), .sealed) }
        /// Each object's references, as the store lists them (and its invariants hold).
        func list(_ core: ClusterCore) -> [ObjectID: Int] {
            var store = core.store
            XCTAssertNil(store.checkInvariants())
            var rows: [ObjectID: Int] = [:]
            for a in store.handle(.request(2, requestId: 99, .list), now: 0) {
                if case .reply(_, _, .list(let r)) = a { for row in r { rows[row.id] = row.refCount } }
            }
            return rows
        }
        // A get of sealed ids: the same reply and the same references.
        var viaHandle = h.nodes[0]
        let replies = viaHandle.handle(.local(.request(1, requestId: 5, .get(mine, timeoutMs: 0))), now: h.now)
        let got = h.nodes[0].getAtOnce(mine, for: 1)
        XCTAssertEqual(replies.count, 1)
        if case .local(.reply(1, 5, let r))? = replies.first { XCTAssertEqual(r, got.map { .objects($0) }) } else { XCTFail("\(replies)") }
        XCTAssertEqual(list(h.nodes[0]), list(viaHandle))
        XCTAssertEqual(list(h.nodes[0])[mine[0]], 1)
        // Not every id sealed here: handle's (a wait, or the home's answer).
        XCTAssertNil(h.nodes[0].getAtOnce(mine + [homedThere[0]], for: 1))
        XCTAssertNil(h.nodes[0].getAtOnce(mine, for: 77), "an unknown client gets handle's error")
        // Release: counts down like handle; no reference left is handle's error.
        var released = h.nodes[0]
        let r2 = released.handle(.local(.request(1, requestId: 6, .release(mine[0]))), now: h.now)
        XCTAssertTrue(h.nodes[0].releaseAtOnce(mine[0], for: 1))
        if case .local(.reply(1, 6, .released))? = r2.first {} else { XCTFail("\(r2)") }
        XCTAssertEqual(list(h.nodes[0]), list(released))
        XCTAssertFalse(h.nodes[0].releaseAtOnce(mine[0], for: 1), "no reference left: handle answers noReference")
        // The last reference to an object in the deletion cache: a removal, handle's.
        XCTAssertTrue(h.nodes[0].deleteAtLastRelease(mine[1]))
        XCTAssertFalse(h.nodes[0].releaseAtOnce(mine[1], for: 1))
        XCTAssertEqual(h.call(.release(mine[1]), client: 1, on: 0), .released)
        XCTAssertNil(list(h.nodes[0])[mine[1]], "removed at its last release")
        // Client 1's replies held behind an acknowledgement: handle's, in order.
        guard case .created? = h.call(.create(homedThere[1], dataSize: 8, metadataSize: 0), client: 1, on: 0) else { return XCTFail() }
        h.apply(0, h.nodes[0].handle(.local(.request(1, requestId: 9, .seal(homedThere[1], digest: 1))), now: h.now))
        XCTAssertNil(h.nodes[0].getAtOnce([mine[2]], for: 1))
        XCTAssertFalse(h.nodes[0].releaseAtOnce(mine[2], for: 1))
        XCTAssertNotNil(h.nodes[0].getAtOnce([mine[2]], for: 2), "client 2's replies are not held")
        h.settle()
        XCTAssertNotNil(h.nodes[0].getAtOnce([mine[2]], for: 1))
        XCTAssertNil(h.nodes[0].getAtOnce([mine[2]], for: ClusterCore.peerBit | 1), "a pseudo-client's request is the core's")
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
        // Every node but the id's home creates it: only the home's
        // directory can tell the creators apart.
        for (k, id) in ids.enumerated() {
            for n in 0..<4 where h.nodes[0].home(of: id) != NodeID(n) {
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
        XCTAssertEqual(losers, 2000)
        // And the home itself creating too: still one winner.
        let more = (1000..<1200).map(oid)
        for (k, id) in more.enumerated() {
            for n in 0..<4 {
                h.apply(NodeID(n), h.nodes[n].handle(.local(.request(ClientID(n + 1), requestId: UInt64(5000 + k), .create(id, dataSize: 64, metadataSize: 0))), now: h.now))
            }
        }
        h.settle(limit: 10_000_000)
        let created = (0..<4).reduce(0) { acc, n in acc + h.replies[n].filter { $0.1 >= 5000 && { if case .created = $0.2 { return true } else { return false } }($0) }.count }
        XCTAssertEqual(created, more.count)
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

    /// A peer that lies about where an object is cannot make a reader map
    /// memory outside its region: an acquire reply past the owner's region
    /// is refused and the get finds nothing — whether the home forwards the
    /// acquire to the owner (the default) or the reader asks the owner
    /// itself after a lookup. Node 0 answers nothing here: every reply it
    /// "sends" is forged, and delivered to node 1 alone.
    func testLyingOwnerCannotHandOutMemoryOutsideItsRegion() throws {
        for forward in [true, false] {
            var h = ClusterHarness(nodes: 2)
            h.nodes[1].config.forwardAcquire = forward
            h.connect(2, on: 1)
            let id = try XCTUnwrap((0..<2_000).map(oid).first { h.nodes[1].home(of: $0) == 0 })
            func forge(_ m: PeerMessage, answering corr: UInt64) {
                h.apply(1, h.nodes[1].handle(.message(from: 0, correlation: corr, m), now: h.now))
            }
            func taken(_ kind: PeerMessage.Kind) -> [ClusterHarness.PeerLink] {
                defer { h.queues[0].removeAll() }
                return h.queues[0].filter { $0.kind == kind.rawValue }
            }
            let lie = ObjectLocation(offset: 1 << 40, dataSize: 10, metadataSize: 0, reserved: 64)
            h.apply(1, h.nodes[1].handle(.local(.request(2, requestId: 3, .get([id], timeoutMs: 0))), now: h.now))
            let acquire: ClusterHarness.PeerLink
            if forward {
                acquire = try XCTUnwrap(taken(.lookupAcquire).first, "forward \(forward): node 1 asked its home")
            } else {
                let lookup = try XCTUnwrap(taken(.lookup).first, "forward \(forward): node 1 asked its home")
                // The home says: sealed at node 0, inside its region.
                forge(.lookupReply(.sealed, owner: 0, location: ObjectLocation(offset: 0, dataSize: 10, metadataSize: 0, reserved: 64), digest: 1),
                      answering: lookup.corr)
                acquire = try XCTUnwrap(taken(.acquire).first, "forward \(forward): node 1 asked the owner")
            }
            XCTAssertTrue(h.replies[1].isEmpty, "forward \(forward): answered before the owner did")
            forge(.acquireReply(code: 0, location: lie, digest: 1), answering: acquire.corr)
            XCTAssertEqual(h.replies[1].first?.2, .objects([nil]), "forward \(forward)")
            XCTAssertGreaterThan(h.nodes[1].counters.refusedMessages, 0, "forward \(forward)")
        }
    }

    /// SPEC §10.8 "Writer side": a client creating in a peer's memory may
    /// abort without writing back, or die; its store writes back and drops
    /// the range through its mapping of the peer's region before the abort
    /// leaves, so no dirty line can land over the range's next object.
    func testAnAbortOrADeathInAPeersMemoryWritesTheRangeBackBeforeTheAbortLeaves() throws {
        var h = ClusterHarness(nodes: 2)
        h.connect(5, on: 0)
        for dies in [false, true] {
            let x = oid(dies ? 41 : 40)
            guard case .created(let l)? = h.call(.createOn(x, dataSize: 300, metadataSize: 0, node: 1), client: 5, on: 0) else {
                return XCTFail("createOn failed")
            }
            XCTAssertNotEqual(l.region, 0, "in node 1's memory")
            let actions = dies ? h.nodes[0].handle(.local(.disconnected(5)), now: h.now)
                               : h.nodes[0].handle(.local(.request(5, requestId: 8, .abort(x))), now: h.now)
            let flush = actions.firstIndex { if case .invalidate(l) = $0 { return true } else { return false } }
            let abort = actions.firstIndex { if case .send(1, _, .abort(x)) = $0 { return true } else { return false } }
            let (f, a) = (try XCTUnwrap(flush, "the range is written back: \(actions)"), try XCTUnwrap(abort, "\(actions)"))
            XCTAssertLessThan(f, a, "written back before the owner may free it")
            h.apply(0, actions)
            h.settle()
            if dies { h.connect(5, on: 0) }
        }
        XCTAssertEqual(h.nodes[1].store.stats.objects, 0, "both aborted at the owner")
    }
}
