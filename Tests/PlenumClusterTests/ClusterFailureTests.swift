import PlenumCluster
import PlenumStore
import PlenumWire
import XCTest

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
        h.nodes[0].config.forwardAcquire = false   // lookup, then acquire (the gRPC baseline's path)
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

    /// SPEC §10.6 "get": the home that owns the object grants at once; a
    /// grant that comes after the get timed out is given back all the same.
    func testAForwardedGrantArrivingAfterTheTimeoutIsGivenBack() {
        var h = ClusterHarness(nodes: 2)
        h.connect(1, on: 0)
        h.connect(2, on: 1)
        let id = (0..<100).map(oid).first { h.nodes[0].home(of: $0) == 1 }!
        XCTAssertEqual(h.put(id, client: 2, on: 1), .sealed)
        h.apply(0, h.nodes[0].handle(.local(.request(1, requestId: 4, .get([id], timeoutMs: 0))), now: h.now))
        h.settle(limit: 1)              // node 1, home and owner, takes the lookupAcquire and grants
        XCTAssertEqual(h.nodes[1].referencesLent[0], 1)
        let grant = h.queues[0]
        XCTAssertEqual(grant.count, 1, "one message back: the grant itself")
        h.queues[0].removeAll()
        h.now += 6_000_000_000
        h.apply(0, h.nodes[0].handle(.local(.tick), now: h.now))
        XCTAssertEqual(h.replies[0].last?.2, .objects([nil]))
        h.queues[0] = grant
        h.settle()
        XCTAssertEqual(h.nodes[1].referencesLent[0], 0, "the late reference was released")
    }

    /// Three nodes: the home forwards to the owner, whose grant goes to the
    /// reader directly (3 one-way hops) and is checked against the owner's
    /// region like any other.
    func testAHomeForwardsTheAcquireAndTheOwnerAnswersTheReader() {
        var h = ClusterHarness(nodes: 3)
        h.connect(1, on: 0)
        h.connect(3, on: 2)
        let id = (0..<500).map(oid).first { h.nodes[0].home(of: $0) == 1 }!
        XCTAssertEqual(h.put(id, client: 3, on: 2), .sealed)
        let before = h.delivered
        h.apply(0, h.nodes[0].handle(.local(.request(1, requestId: 7, .get([id], timeoutMs: 0))), now: h.now))
        h.settle()
        guard case .objects(let ls)? = h.replies[0].last?.2, let l = ls.first ?? nil else { return XCTFail("no object: \(h.replies[0])") }
        XCTAssertEqual(l.dataSize, 100)
        XCTAssertEqual(h.delivered - before, 3, "lookupAcquire → acquireFor → acquireReply")
        XCTAssertEqual(h.nodes[2].referencesLent[0], 1, "the owner lent node 0 the reference")
        // Not forwarded to the reader itself, nor when the owner is not live at the home.
        h.apply(0, h.nodes[0].handle(.local(.request(1, requestId: 8, .release(id))), now: h.now))
        h.settle()
        XCTAssertEqual(h.nodes[2].referencesLent[0], 0)
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
        _ = h.nodes[1].handle(.message(from: 0, correlation: 0, .lookup(oid(2), watch: true)), now: h.now)
        XCTAssertEqual(h.nodes[1].store.stats.objects, 0)
        XCTAssertEqual(h.nodes[1].directoryWatches, 0)
        XCTAssertEqual(h.nodes[1].counters.refusedMessages, 2)
        // A reserve without one is a re-homing reserve (SPEC §10.4
        // "Handoff"): recorded, never answered.
        let reserved = h.nodes[1].handle(.message(from: 0, correlation: 0, .reserve(oid(2), view: h.nodes[1].view)), now: h.now)
        XCTAssertEqual(h.nodes[1].directoryEntries, 1)
        XCTAssertTrue(reserved.isEmpty, "\(reserved)")
        // And a node that is not a live member is not heard at all.
        _ = h.nodes[1].handle(.message(from: 7, correlation: 5, .allocate(oid(1), dataSize: 100, metadataSize: 0)), now: h.now)
        XCTAssertEqual(h.nodes[1].store.stats.objects, 0)
    }

    func testGetsWaitingOnOneNodeFollowTheirIdToItsNewHome() {
        var h = ClusterHarness(nodes: 3)
        for c in [1, 2] { h.connect(ClientID(c), on: 0) }
        h.connect(3, on: 1)
        let id = (0..<200).map(oid).first { h.nodes[0].home(of: $0) == 2 && Home.of($0, among: [0, 1]) == 1 }!
        for c in [1, 2] { XCTAssertNil(h.call(.get([id], timeoutMs: 60_000), client: ClientID(c), on: 0, rid: UInt64(c))) }
        XCTAssertEqual(h.nodes[2].directoryWatches, 1)
        h.kill(2)   // the home dies: the watch moves to node 1
        XCTAssertEqual(h.nodes[1].directoryWatches, 1)
        XCTAssertEqual(h.put(id, client: 3, on: 1), .sealed)
        h.settle()
        let answered = h.replies[0].filter { if case .objects(let ls) = $0.2 { return ls.first! != nil } else { return false } }
        XCTAssertEqual(Set(answered.map(\.0)), [1, 2], "both waiting gets got the object")
    }

    func testADisconnectedClientsWatchIsDroppedAtTheHome() {
        var h = ClusterHarness(nodes: 2)
        h.connect(1, on: 0)
        let id = (0..<100).map(oid).first { h.nodes[0].home(of: $0) == 1 }!
        XCTAssertNil(h.call(.get([id], timeoutMs: -1), client: 1, on: 0))
        XCTAssertEqual(h.nodes[1].directoryWatches, 1)
        h.apply(0, h.nodes[0].handle(.local(.disconnected(1)), now: h.now))
        h.settle()
        XCTAssertEqual(h.nodes[1].directoryWatches, 0)
    }

    /// A delete at the owner is answered by the home once it unpublished
    /// (SPEC §10.6 "delete"): 3 one-way hops, and never before the entry is
    /// gone. Without forwarding (gRPC) the owner answers after the home's
    /// acknowledgement: 4.
    func testADeleteAtTheOwnerIsAnsweredByTheHomeOnceTheEntryIsGone() {
        for forward in [true, false] {
            var h = ClusterHarness(nodes: 3)
            for i in 0..<3 { h.nodes[i].config.forwardDelete = forward }
            h.connect(1, on: 0)
            let id = h.sealed(home: 1, owner: 2, client: 3)
            XCTAssertEqual(h.nodes[1].directoryEntries, 1)
            let before = h.delivered
            h.apply(0, h.nodes[0].handle(.local(.request(1, requestId: 9, .delete([id]))), now: h.now))
            // No index here: a lookup at the home, its reply, the delete at the owner.
            h.settle(limit: 3)
            XCTAssertNil(h.nodes[2].store.location(id), "the owner deleted")
            XCTAssertEqual(h.nodes[1].directoryEntries, 1)
            XCTAssertTrue(h.replies[0].isEmpty, "no answer before the home unpublished")
            if forward {
                guard let m = h.queues[1].first else { return XCTFail("nothing went to the home") }
                XCTAssertEqual(m.kind, PeerMessage.Kind.unpublishFor.rawValue)
            }
            h.settle(limit: 1)                      // the home unpublishes
            XCTAssertEqual(h.nodes[1].directoryEntries, 0)
            XCTAssertTrue(h.replies[0].isEmpty)
            h.settle()
            XCTAssertEqual(h.replies[0].last?.2, .deleted([nil]))
            XCTAssertEqual(h.delivered - before, forward ? 5 : 6, "lookup, lookupReply, delete → unpublishFor → result (forward: \(forward))")
            XCTAssertEqual(h.call(.contains(id), client: 1, on: 0), .contains(false))
        }
    }

    /// A home that is the requester completes its own delete (2 hops); a
    /// refused delete is answered by the owner; an `unpublishFor` naming an
    /// owner other than its sender is refused unanswered.
    func testAForwardedDeleteToItsOwnHomeAndARefusedOne() {
        var h = ClusterHarness(nodes: 3)
        h.connect(1, on: 0)
        let id = h.sealed(home: 0, owner: 2, client: 3)
        // In use at the owner: refused there, the entry stays.
        guard case .objects? = h.call(.get([id], timeoutMs: 0), client: 3, on: 2) else { return XCTFail() }
        let before = h.delivered
        guard case .deleted(let r)? = h.call(.delete([id]), client: 1, on: 0), case .remote(5, _)? = r.first ?? nil else { return XCTFail("\(h.replies[0])") }
        XCTAssertEqual(h.delivered - before, 2, "delete → result from the owner")
        XCTAssertEqual(h.nodes[0].directoryEntries, 1)
        XCTAssertEqual(h.call(.release(id), client: 3, on: 2), .released)
        let again = h.delivered
        XCTAssertEqual(h.call(.delete([id]), client: 1, on: 0), .deleted([nil]))
        XCTAssertEqual(h.delivered - again, 2, "delete → unpublishFor to the requester, its home")
        XCTAssertEqual(h.nodes[0].directoryEntries, 0)
        // Forged: node 2 speaks for owner 1.
        let refused = h.nodes[1].counters.refusedMessages
        let out = h.nodes[1].handle(.message(from: 2, correlation: 77, .unpublishFor(id, owner: 1, requester: 0)), now: h.now)
        XCTAssertTrue(out.isEmpty, "\(out)")
        XCTAssertEqual(h.nodes[1].counters.refusedMessages, refused + 1)
    }

    /// Client 1 of node 0 deletes an object homed at node 1 and sealed at
    /// node 2, carried as far as the owner's `unpublishFor` to the home.
    func forwardedDeleteInFlight(_ h: inout ClusterHarness) -> ObjectID {
        h.connect(1, on: 0)
        let id = h.sealed(home: 1, owner: 2, client: 3)
        h.apply(0, h.nodes[0].handle(.local(.request(1, requestId: 9, .delete([id]))), now: h.now))
        h.settle(limit: 3)                          // lookup, lookupReply, delete
        return id
    }

    /// The home dies with the owner's `unpublishFor` in flight: the
    /// requester fails the delete at that death (13), not at its timeout.
    func testAForwardedDeleteFailsWhenTheHomeDiesBeforeAnswering() {
        var h = ClusterHarness(nodes: 3)
        let id = forwardedDeleteInFlight(&h)
        XCTAssertNil(h.nodes[2].store.location(id))
        h.kill(1)
        guard case .deleted(let r)? = h.replies[0].last?.2, case .nodeUnavailable(1, _)? = r.first ?? nil else { return XCTFail("\(h.replies[0])") }
        XCTAssertNil(h.nodes[2].store.location(id))
        XCTAssertEqual(h.call(.delete([id]), client: 1, on: 0), .deleted([.notFound(id)]), "a retry finds it gone")
    }

    /// The requester dies with the owner's `unpublishFor` in flight: the
    /// home still removes the entry, and answers nobody.
    func testAnUnpublishForWhoseRequesterDiedStillRemovesTheEntry() {
        var h = ClusterHarness(nodes: 3)
        let id = forwardedDeleteInFlight(&h)
        XCTAssertEqual(h.queues[1].first?.kind, PeerMessage.Kind.unpublishFor.rawValue)
        let pending = h.queues[1]
        h.queues[1].removeAll()
        h.kill(0)
        h.queues[1] = pending                       // the owner's unpublishFor reaches the home after the death
        let out = h.nodes[1].handle(.message(from: 2, correlation: pending[0].corr, try! PeerMessage.decode(kind: pending[0].kind, body: pending[0].body)), now: h.now)
        XCTAssertEqual(h.nodes[1].directoryEntries, 0, "the entry is gone")
        XCTAssertFalse(out.contains { if case .send = $0 { return true } else { return false } }, "no answer to a dead requester: \(out)")
        h.queues[1].removeAll()
        h.connect(4, on: 2)
        XCTAssertEqual(h.call(.contains(id), client: 4, on: 2), .contains(false))
    }

    /// A forwarded acquire from a life of the reader the owner no longer
    /// knows is refused: its grant would lend the new life a reference it
    /// never asked for (simulator cluster seed 6951).
    func testAnOwnerRefusesAForwardedAcquireOfAnotherLifeOfTheReader() {
        var h = ClusterHarness(nodes: 3)
        let id = h.sealed(home: 1, owner: 2, client: 3)
        let refused = h.nodes[2].counters.refusedMessages
        let old = h.nodes[2].handle(.message(from: 1, correlation: 9, .acquireFor(id, reader: 0, incarnation: 99)), now: h.now)
        XCTAssertTrue(old.isEmpty, "\(old)")
        XCTAssertEqual(h.nodes[2].counters.refusedMessages, refused + 1)
        XCTAssertEqual(h.nodes[2].referencesLent[0] ?? 0, 0)
        // The life it knows (the harness's incarnation 100 + node) is served.
        h.apply(2, h.nodes[2].handle(.message(from: 1, correlation: 9, .acquireFor(id, reader: 0, incarnation: 100)), now: h.now))
        XCTAssertEqual(h.nodes[2].referencesLent[0], 1)
    }

    /// A create on a peer is handed on by the home (SPEC §10.6 "create"):
    /// reserveAllocate → allocateFor → allocateReply, 3 one-way hops (2
    /// when the home is the owner); without forwarding (gRPC) 4.
    func testACreateOnAPeerIsHandedOnByTheHome() {
        for forward in [true, false] {
            var h = ClusterHarness(nodes: 3)
            for i in 0..<3 { h.nodes[i].config.forwardCreate = forward }
            h.connect(1, on: 0)
            let ids = (0..<500).map(oid).filter { h.nodes[0].home(of: $0) == 1 }
            for (id, owner) in [(ids[0], NodeID(2)), (ids[1], NodeID(1))] {
                let before = h.delivered
                guard case .created(let l)? = h.call(.createOn(id, dataSize: 100, metadataSize: 0, node: owner), client: 1, on: 0) else {
                    return XCTFail("\(h.replies[0])")
                }
                XCTAssertEqual(l.dataSize, 100)
                XCTAssertEqual(l.region, Int(owner) + 1, "the owner's handle")
                XCTAssertEqual(h.delivered - before, forward ? (owner == 1 ? 2 : 3) : 4, "owner \(owner), forward \(forward)")
                XCTAssertNotNil(h.nodes[Int(owner)].store.location(id))
                XCTAssertEqual(h.call(.seal(id, digest: 7), client: 1, on: 0), .sealed)
                XCTAssertEqual(h.call(.contains(id), client: 1, on: 0), .contains(true))
            }
            // Refused at the home: the id is taken.
            XCTAssertEqual(h.call(.createOn(ids[0], dataSize: 100, metadataSize: 0, node: 2), client: 1, on: 0), .error(.alreadyExists(ids[0])))
        }
    }

    /// The owner dies with the home's allocateFor in flight: the create
    /// fails at that death and the reservation the home granted is given
    /// back, so the id can be created elsewhere.
    func testAForwardedCreateWhoseOwnerDiesGivesItsReservationBack() {
        var h = ClusterHarness(nodes: 3)
        h.connect(1, on: 0)
        let id = (0..<500).map(oid).first { h.nodes[0].home(of: $0) == 1 && Home.of($0, among: [0, 1]) == 1 }!
        h.apply(0, h.nodes[0].handle(.cluster(1, requestId: 5, .createOn(id, dataSize: 100, metadataSize: 0, node: 2)), now: h.now))
        h.settle(limit: 1)                          // the home grants and hands on
        XCTAssertEqual(h.nodes[1].directoryEntries, 1)
        XCTAssertEqual(h.queues[2].first?.kind, PeerMessage.Kind.allocateFor.rawValue)
        h.kill(2)
        guard case .error(.nodeUnavailable)? = h.replies[0].last?.2 else { return XCTFail("\(h.replies[0])") }
        XCTAssertEqual(h.nodes[1].directoryEntries, 0, "the reservation was given back")
        guard case .created? = h.call(.create(id, dataSize: 100, metadataSize: 0), client: 1, on: 0) else { return XCTFail("\(h.replies[0])") }
    }

    /// The home dies while a peer seals this node's create, and the owner
    /// deletes the object before it re-homes: nothing re-publishes it, so the
    /// reservation the creator re-sent to the new home is given back when the
    /// seal is answered (simulator cluster seed 777).
    func testAReservationResentWhileAPeerSealsIsGivenBackAtTheSeal() {
        var h = ClusterHarness(nodes: 3)
        h.connect(1, on: 0)
        h.connect(5, on: 2)
        let id = (0..<500).map(oid).first { h.nodes[0].home(of: $0) == 1 }!
        guard case .created? = h.call(.createOn(id, dataSize: 100, metadataSize: 0, node: 2), client: 1, on: 0) else { return XCTFail("\(h.replies[0])") }
        h.apply(0, h.nodes[0].handle(.local(.request(1, requestId: 8, .seal(id, digest: 42))), now: h.now))
        h.settle(limit: 1)                          // the owner seals and publishes; its answer waits for the home
        XCTAssertEqual(h.queues[1].first?.kind, PeerMessage.Kind.publish.rawValue)
        h.apply(2, h.nodes[2].handle(.local(.request(5, requestId: 9, .delete([id]))), now: h.now))
        XCTAssertNil(h.nodes[2].store.location(id), "deleted at the owner")
        h.kill(1)                                   // the publish and the unpublish die with the home
        XCTAssertTrue(h.replies[0].contains { $0.0 == 1 && $0.1 == 8 && $0.2 == .sealed }, "\(h.replies[0])")
        for n in [0, 2] { XCTAssertEqual(h.nodes[n].directorySnapshot.count, 0, "node \(n): \(h.nodes[n].directorySnapshot)") }
        guard case .created? = h.call(.create(id, dataSize: 10, metadataSize: 0), client: 5, on: 2) else { return XCTFail("\(h.replies[2])") }
    }

    /// A client that left has its object in a peer's memory aborted there; the
    /// owner dies first: the creator gives the reservation back all the same
    /// (simulator cluster seed 4314).
    func testADepartedClientsAbortWhoseOwnerDiesGivesTheReservationBack() {
        var h = ClusterHarness(nodes: 3)
        h.connect(1, on: 0)
        h.connect(5, on: 1)
        let id = (0..<500).map(oid).first { h.nodes[0].home(of: $0) == 1 && Home.of($0, among: [0, 1]) == 1 }!
        guard case .created? = h.call(.createOn(id, dataSize: 100, metadataSize: 0, node: 2), client: 1, on: 0) else { return XCTFail("\(h.replies[0])") }
        h.apply(0, h.nodes[0].handle(.local(.disconnected(1)), now: h.now))
        XCTAssertEqual(h.queues[2].first?.kind, PeerMessage.Kind.abort.rawValue)
        h.kill(2)                                   // the abort dies with the owner
        XCTAssertEqual(h.nodes[1].directorySnapshot.count, 0, "\(h.nodes[1].directorySnapshot)")
        guard case .created? = h.call(.create(id, dataSize: 10, metadataSize: 0), client: 5, on: 1) else { return XCTFail("\(h.replies[1])") }
    }

    /// A departed client's abort that the owner refuses (here: it no
    /// longer knows the object) still ends the creator's reservation.
    func testADepartedClientsAbortAnsweredWithAnErrorGivesTheReservationBack() {
        var h = ClusterHarness(nodes: 3)
        h.connect(1, on: 0)
        h.connect(5, on: 1)
        let id = (0..<500).map(oid).first { h.nodes[0].home(of: $0) == 1 }!
        guard case .created? = h.call(.createOn(id, dataSize: 100, metadataSize: 0, node: 2), client: 1, on: 0) else { return XCTFail("\(h.replies[0])") }
        h.apply(0, h.nodes[0].handle(.local(.disconnected(1)), now: h.now))
        guard let abort = h.queues[2].first, abort.kind == PeerMessage.Kind.abort.rawValue else { return XCTFail("\(h.queues[2])") }
        h.queues[2].removeAll()
        h.apply(0, h.nodes[0].handle(.message(from: 2, correlation: abort.corr, .result(code: 1)), now: h.now))   // any error code
        h.settle()
        XCTAssertEqual(h.nodes[1].directorySnapshot.count, 0, "\(h.nodes[1].directorySnapshot)")
        XCTAssertEqual(h.nodes[0].openWork, [:])
    }

    /// The home dies after handing on: the create fails at its death, and
    /// the owner's allocation, arriving later, is aborted there.
    func testALateAllocationOfAForwardedCreateIsAborted() {
        var h = ClusterHarness(nodes: 3)
        h.connect(1, on: 0)
        let id = (0..<500).map(oid).first { h.nodes[0].home(of: $0) == 1 }!
        h.apply(0, h.nodes[0].handle(.cluster(1, requestId: 5, .createOn(id, dataSize: 100, metadataSize: 0, node: 2)), now: h.now))
        h.settle(limit: 2)                          // the home hands on, the owner allocates
        XCTAssertNotNil(h.nodes[2].store.location(id))
        XCTAssertEqual(h.queues[0].first?.kind, PeerMessage.Kind.allocateReply.rawValue)
        let reply = h.queues[0]
        h.queues[0].removeAll()
        h.kill(1)
        guard case .error(.nodeUnavailable)? = h.replies[0].last?.2 else { return XCTFail("\(h.replies[0])") }
        h.queues[0] = reply                         // the owner's answer, late
        h.settle()
        XCTAssertNil(h.nodes[2].store.location(id), "the late allocation was aborted")
    }

    /// An allocateFor from a life of the creator the owner no longer knows
    /// allocates nothing.
    func testAnOwnerRefusesAForwardedAllocationOfAnotherLifeOfTheCreator() {
        var h = ClusterHarness(nodes: 3)
        let refused = h.nodes[2].counters.refusedMessages
        let out = h.nodes[2].handle(.message(from: 1, correlation: 9, .allocateFor(oid(1), dataSize: 10, metadataSize: 0, creator: 0, incarnation: 7)),
                                    now: h.now)
        XCTAssertTrue(out.isEmpty, "\(out)")
        XCTAssertEqual(h.nodes[2].counters.refusedMessages, refused + 1)
        XCTAssertNil(h.nodes[2].store.location(oid(1)))
    }

    /// The home dies after handing a get on to the owner: the get ends at
    /// that death, and the owner's grant, arriving later, is given back
    /// (simulator cluster seed 78740: the reference leaked).
    func testALateGrantOfAGetWhoseHomeDiedIsGivenBack() {
        var h = ClusterHarness(nodes: 3)
        h.connect(1, on: 0)
        let id = h.sealed(home: 1, owner: 2, client: 3)
        h.apply(0, h.nodes[0].handle(.local(.request(1, requestId: 4, .get([id], timeoutMs: 0))), now: h.now))
        h.settle(limit: 2)                          // lookupAcquire at the home, acquireFor at the owner
        XCTAssertEqual(h.nodes[2].referencesLent[0], 1)
        XCTAssertEqual(h.queues[0].first?.kind, PeerMessage.Kind.acquireReply.rawValue)
        let grant = h.queues[0]
        h.queues[0].removeAll()
        h.kill(1)
        XCTAssertEqual(h.replies[0].last?.2, .objects([nil]), "the get ended at the home's death")
        h.queues[0] = grant
        h.settle()
        XCTAssertEqual(h.nodes[2].referencesLent[0] ?? 0, 0, "the late reference was given back")
    }

    /// A forwarded create that timed out while the home still had it (its
    /// unreserve came first, as for a parked reserve served later): the
    /// late allocation is aborted and the reservation given back.
    func testATimedOutForwardedCreateGivesBackWhatCameLate() {
        var h = ClusterHarness(nodes: 3)
        h.connect(1, on: 0)
        let id = (0..<500).map(oid).first { h.nodes[0].home(of: $0) == 1 }!
        h.apply(0, h.nodes[0].handle(.cluster(1, requestId: 5, .createOn(id, dataSize: 100, metadataSize: 0, node: 2)), now: h.now))
        let ask = h.queues[1]
        h.queues[1].removeAll()                     // the reserveAllocate, held back
        h.now += 6_000_000_000
        h.apply(0, h.nodes[0].handle(.local(.tick), now: h.now))
        guard case .error(.nodeUnavailable)? = h.replies[0].last?.2 else { return XCTFail("\(h.replies[0])") }
        XCTAssertEqual(h.queues[1].map(\.kind), [PeerMessage.Kind.unreserve.rawValue])
        h.queues[1] = ask                           // served after the unreserve
        h.settle()
        XCTAssertNil(h.nodes[2].store.location(id), "the late allocation was aborted")
        XCTAssertEqual(h.nodes[1].directoryEntries, 0, "the late reservation was given back")
    }

    /// A home that cannot hand a create on (the owner is not live there)
    /// grants the reservation and says 0: the creator allocates itself.
    func testAHomeThatCannotHandACreateOnSaysReservedOnly() {
        var h = ClusterHarness(nodes: 3)
        let id = (0..<500).map(oid).first { h.nodes[0].home(of: $0) == 1 }!
        let out = h.nodes[1].handle(.message(from: 0, correlation: 9, .reserveAllocate(id, view: h.nodes[1].view, owner: 7, dataSize: 10, metadataSize: 0)),
                                    now: h.now)
        XCTAssertEqual(h.nodes[1].directoryEntries, 1, "reserved for node 0")
        guard out.count == 1, case .send(0, 9, .result(0)) = out[0] else { return XCTFail("\(out)") }
    }
}
