import Foundation
import PlenumClient
import PlenumCluster
import PlenumMemory
import PlenumRegion
import PlenumStore
import PlenumWire
import Testing

/// N real `plenum store --cluster` processes on this host, each lending a
/// region in /dev/shm; stopped (and their files removed) by `stop()`.
/// Death after 10 s of silence and requests bounded at 30 s by default: a
/// node stalled on a busy machine is neither fenced nor timed out (a fenced
/// peer stays fenced for its whole life, SPEC §10.3). Tests that kill a node
/// ask for a shorter death.
final class TestCluster {
    let dir: String
    let file: String
    var config: ClusterConfig
    var processes: [NodeID: PlenumProcess.Running] = [:]
    /// Each node also serves Plasma clients at `plasmaSocket(n)` (SPEC §11.8).
    let plasma: Bool

    init(nodes: Int, memory: Int = 16 << 20, tag: String = #function, reach: ((NodeID, NodeID) -> Bool)? = nil,
         deadAfterMs: Int = 10_000, requestTimeoutMs: Int = 30_000, plasma: Bool = false,
         configure: (inout ClusterConfig) -> Void = { _ in }) throws {
        self.plasma = plasma
        let t = "\(getpid())-\(tag.filter { $0.isLetter }.prefix(16))"
        dir = "/tmp/plenum-ctest-\(t)"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        file = dir + "/cluster.toml"
        config = ClusterConfig.local(nodes: nodes, memory: memory, dir: dir, tag: "ctest-\(t)", transport: Self.transport,
                                     // Below Linux's ephemeral ports (32768–60999): an outgoing
                                     // connection cannot hold a node's port before it binds.
                                     grpcPortBase: 20_000 + Int.random(in: 0..<1_270) * 10)
        config.deadAfterMillis = deadAfterMs
        config.requestTimeoutMillis = requestTimeoutMs
        configure(&config)
        if let reach {
            for i in config.nodes.indices { config.nodes[i].reach = config.nodes[i].reach.filter { reach(config.nodes[i].id, $0.key) } }
        }
        try config.validate()
        try config.toml().write(toFile: file, atomically: true, encoding: .utf8)
        for n in config.nodes { try start(n.id) }
        try waitAllAlive()
    }

    /// What carries peer messages: `$PLENUM_TEST_TRANSPORT` (SPEC §10.11),
    /// rings by default. Every test of this suite runs on each transport
    /// (Baseline/Scripts/test).
    static var transport: PeerTransport {
        PeerTransport(rawValue: ProcessInfo.processInfo.environment["PLENUM_TEST_TRANSPORT"] ?? "") ?? .rings
    }

    func start(_ n: NodeID) throws {
        processes[n] = try PlenumProcess.Running(["store", "--cluster", file, "--node", "\(n)"] + (plasma ? ["--plasma-socket", plasmaSocket(n)] : []))
    }

    func plasmaSocket(_ n: NodeID) -> String { socket(n) + ".plasma" }

    func socket(_ n: NodeID) -> String { config.node(n)!.socket }
    func client(_ n: NodeID) throws -> PlenumClient { try PlenumClient(socketPath: socket(n)) }

    func status(_ n: NodeID) -> [String: Any]? {
        guard let c = try? client(n), let j = try? c.clusterStatus() else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(j.utf8))) as? [String: Any]
    }

    /// node n's view of peer p, from its status.
    func peer(_ p: NodeID, seenBy n: NodeID) -> [String: Any]? {
        (status(n)?["peers"] as? [[String: Any]])?.first { $0["node"] as? Int == Int(p) }
    }

    /// Waits (bounded) until `condition` holds (the free `eventually`).
    func eventually(_ seconds: Double = 60, _ condition: () -> Bool) -> Bool {
        PlenumProcessTests.eventually(seconds, condition)
    }

    func waitAllAlive(among nodes: [NodeID]? = nil) throws {
        let ids = nodes ?? config.nodes.map(\.id)
        let ok = eventually(60) {
            ids.allSatisfy { n in ids.allSatisfy { p in p == n || peer(p, seenBy: n)?["alive"] as? Bool == true } }
        }
        guard ok else { throw CLIFailure("cluster did not come up: \(ids.map { status($0) ?? [:] })") }
    }

    func kill(_ n: NodeID) {
        guard let p = processes[n] else { return }
        Glibc.kill(p.process.processIdentifier, SIGKILL)
        _ = p.finish(timeout: 10)
        processes[n] = nil
    }

    /// SIGTERM to every node: each must exit 0; files are removed.
    @discardableResult
    func stop() -> [Int32] {
        var codes: [Int32] = []
        for (_, p) in processes.sorted(by: { $0.key < $1.key }) {
            p.process.terminate()
            codes.append(p.finish(timeout: 30).status)
        }
        processes = [:]
        for n in config.nodes { unlink(n.region); unlink(n.socket); unlink(n.bell) }
        try? FileManager.default.removeItem(atPath: dir)
        return codes
    }
}

struct CLIFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

func bytes(_ n: Int, seed: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ seed &* 7 &+ ($0 >> 9)) } }

func cid(_ k: Int, _ tag: UInt8 = 0) -> ObjectID {
    var b = [UInt8](repeating: tag, count: 20)
    withUnsafeBytes(of: UInt64(k).bigEndian) { for i in 0..<8 { b[12 + i] = $0[i] } }
    b[0] = 0xC1
    return ObjectID(bytes: b)!
}

@Suite(.serialized) struct ClusterProcessTests {
    @Test func putOnNodeZeroGetOnNodeTwoByteExactZeroCopyAndTracked() throws {
        let cluster = try TestCluster(nodes: 3)
        defer { cluster.stop() }
        // Every home takes over its view once its peers have re-homed
        // (SPEC §10.4 "Handoff"; always, over gRPC, where views are off).
        #expect(cluster.eventually { (0..<3).allSatisfy { cluster.status(NodeID($0))?["taken_over"] as? Bool == true } })
        let c0 = try cluster.client(0), c1 = try cluster.client(1), c2 = try cluster.client(2)
        let id = cid(1), data = bytes(300_000, seed: 1)
        try c0.put(id, data: data, metadata: [7, 7])
        #expect(try c1.contains(id))
        // The messages went over the transport under test (SPEC §10.11).
        let transport = try #require(cluster.status(1)?["transport"] as? [String: Any])
        #expect(transport["name"] as? String == TestCluster.transport.rawValue)
        if TestCluster.transport != .rings { #expect((transport["received"] as? Int ?? 0) > 0 && (transport["sent"] as? Int ?? 0) > 0) }
        let b = try #require(try c2.get([id], timeoutMs: 0).first ?? nil)
        #expect(try b.data == data)
        #expect(try b.withMetadata { Array($0) } == [7, 7])
        // Zero-copy: the bytes are read in place in node 0's region, which
        // this client mapped from the descriptor node 2 passed.
        let region = try #require(c2.regions.first { $0.handle == b.region })
        #expect(b.region != 0 && region.node == 0)
        #expect(try c2.memory(for: b.location).size == region.size)
        // SPEC §10.3 "Region size": 4096 (header) + objects + peer-links + directory-index + cluster-view, nothing after.
        let plan = try RingPlan(cluster.config), c = cluster.config
        let block = 5 * c.lineSize + c.ringSlots * c.ringSlotSize
        for n in c.nodes {
            let links = max(4096, (plan.rings(in: n.id) * block + 4095) / 4096 * 4096)
            let size = (try? FileManager.default.attributesOfItem(atPath: n.region)[.size] as? Int) ?? -1
            // The directory index: rings only (SPEC §10.4), L·(1 + buckets) rounded to pages.
            let index = c.transport != .rings || c.directoryIndex == 0 ? 0 : (c.lineSize * (1 + c.directoryIndex / ((c.lineSize - 16) / 24)) + 4095) / 4096 * 4096
            let view = index > 0 ? 4096 : 0     // SPEC §10.4 "Client peeks"
            #expect(size == 4096 + (n.memory + 4095) / 4096 * 4096 + links + index + view, "node \(n.id)'s region")
            if n.id == 0 { #expect(region.size == size, "the size the client was told") }
        }
        // Node 0 sees node 2's reference: delete and eviction refused.
        let refused = try c0.delete([id])
        #expect(refused.first??.description.contains("in use") == true)
        #expect(try c0.evict(bytes: 1 << 30) == 0)
        #expect((cluster.peer(2, seenBy: 0)?["references_lent"] as? Int) == 1)
        try c2.release(b)
        #expect(cluster.eventually { (try? c0.delete([id])) == [nil] })
        #expect(try c0.stats().used == 0)
        #expect(try !c2.contains(id))
        #expect(try c1.list().isEmpty)
        #expect(cluster.stop() == [0, 0, 0])
    }

    @Test func theSameThousandIdsCreatedFromEveryNodeHaveOneWinnerEach() throws {
        let cluster = try TestCluster(nodes: 4, memory: 32 << 20)
        defer { cluster.stop() }
        let ids = (0..<1000).map { cid($0, 0x22) }
        let sockets = (0..<4).map { cluster.socket(NodeID($0)) }
        let results = UnsafeMutableBufferPointer<Int>.allocate(capacity: 4 * ids.count)
        results.initialize(repeating: -1)
        defer { results.deallocate() }
        let base = Int(bitPattern: results.baseAddress!)
        DispatchQueue.concurrentPerform(iterations: 4) { n in
            guard let c = try? PlenumClient(socketPath: sockets[n]) else { return }
            let out = UnsafeMutablePointer<Int>(bitPattern: base)!
            for start in stride(from: 0, to: ids.count, by: 50) {
                let batch = ids[start..<min(ids.count, start + 50)].map { Wire.InlineObject(id: $0, data: [UInt8(n)], metadata: []) }
                let r: [StoreError?]
                do { r = try c.createAndSeal(batch) } catch { Issue.record("node \(n): \(error)"); continue }
                for (k, e) in r.enumerated() { out[n * ids.count + start + k] = e == nil ? 0 : Int(Wire.code(e!).rawValue) }
            }
        }
        var winners = [Int](repeating: 0, count: ids.count)
        for n in 0..<4 {
            for k in ids.indices {
                let r = results[n * ids.count + k]
                #expect(r == 0 || r == 1, "node \(n) id \(k): code \(r)")
                if r == 0 { winners[k] += 1 }
            }
        }
        #expect(winners == [Int](repeating: 1, count: ids.count), "exactly one creator per id")
        // Every node reads every id, and sees the winner's bytes.
        let c3 = try cluster.client(3)
        let got = try c3.get(Array(ids.prefix(200)), timeoutMs: 0)
        for (k, b) in got.enumerated() {
            let winner = (0..<4).first { results[$0 * ids.count + k] == 0 }
            #expect(try b?.data == [UInt8(winner ?? 9)])
        }
    }

    /// Lookups of ids homed on every node, 64 in flight from one client:
    /// each answered as its home answers, every answer right.
    @Test func lookupsInFlightAcrossHomesAreAllAnswered() throws {
        let cluster = try TestCluster(nodes: 3)
        defer { cluster.stop() }
        let ids = (0..<300).map { cid($0, 0x66) }
        let homes = Set(ids.map { Home.of($0, among: [0, 1, 2]) })
        #expect(homes.count == 3, "ids homed on every node")
        let stored = ids.enumerated().filter { $0.offset % 3 != 0 }.map(\.element)
        try cluster.client(2).createAndSeal(stored.map { .init(id: $0, data: [3]) }).forEach { #expect($0 == nil) }
        let c0 = try cluster.client(0)
        let expected = ids.map { stored.contains($0) }
        #expect(try c0.contains(ids, window: 64) == expected)
        #expect(try c0.contains(ids, window: 1) == expected)
    }

    @Test func remoteAllocationWhenLocalMemoryIsFullAndAccountingReturns() throws {
        let cluster = try TestCluster(nodes: 3, memory: 4 << 20)
        defer { cluster.stop() }
        let c0 = try cluster.client(0), c1 = try cluster.client(1)
        let big = cid(1), spill = cid(2)
        try c0.put(big, data: bytes(3 << 20, seed: 3))
        let held = try #require(try c0.get([big], timeoutMs: 0).first ?? nil)   // pinned: not evictable
        // Wait until node 0 knows its peers' free memory (heartbeats).
        #expect(cluster.eventually { (cluster.peer(1, seenBy: 0)?["memory"] as? [String: Any]) != nil })
        let data = bytes(2 << 20, seed: 4)
        try c0.put(spill, data: data)
        let b = try #require(try c1.get([spill], timeoutMs: 0).first ?? nil)
        #expect(try b.data == data)
        let rows = try c0.list()
        let row = try #require(rows.first { $0.id == spill })
        #expect(row.location.region != 0, "placed in a peer's memory")
        try c1.release(b)
        try c0.release(held)
        // Each is deleted once its releases have reached its owner; one
        // deleted by an earlier attempt answers notFound to the later ones
        // (requiring [nil, nil] from one attempt failed whenever node 0 took
        // c0's release after c1's first delete). Memory back to zero below
        // shows both went.
        var answers: [String] = []
        let deleted = cluster.eventually {
            let r: [StoreError?]
            do { r = try c1.delete([spill, big]) } catch { answers.append("threw \(error)"); return false }
            answers.append("\(r)")
            // Errors arrive decoded from the wire (`.remote(code:text:)`),
            // so by code: matching `case .notFound` never held, and a first
            // attempt answering [nil, inUse] left this waiting for ever.
            return r.allSatisfy { e in e.map { Wire.code($0) == .notFound } ?? true }
        }
        #expect(deleted, "\(answers.count) deletes answered \(answers.prefix(3)) … \(answers.suffix(2)); \((0..<3).map { cluster.status(NodeID($0)) ?? [:] })")
        for n in 0..<3 { #expect(try cluster.client(NodeID(n)).stats().used == 0, "node \(n) back to its start") }
    }

    @Test func oneWayReachPutsBothRingsInTheSharedMemory() throws {
        // Node 0 maps node 1's memory; node 1 cannot map node 0's.
        let cluster = try TestCluster(nodes: 2) { me, other in !(me == 1 && other == 0) }
        defer { cluster.stop() }
        let out = try #require(cluster.peer(1, seenBy: 0)?["ring_out"] as? [String: Any])
        let inn = try #require(cluster.peer(1, seenBy: 0)?["ring_in"] as? [String: Any])
        #expect(out["lives_in_node"] as? Int == 1 && inn["lives_in_node"] as? Int == 1)
        let c0 = try cluster.client(0), c1 = try cluster.client(1)
        try c1.put(cid(1), data: bytes(5000, seed: 5))
        #expect(try c0.get([cid(1)], timeoutMs: 0).first??.data == bytes(5000, seed: 5))
        try c0.put(cid(2), data: [1, 2, 3], onNode: 1)
        #expect(try c1.get([cid(2)], timeoutMs: 0).first??.data == [1, 2, 3])
        try c0.put(cid(3), data: [4])
        #expect(try c1.contains(cid(3)), "lookups work both ways")
        #expect(throws: ClientError.self) { try c1.put(cid(4), data: [5], onNode: 0) }
    }

    @Test func aKilledNodeIsDeclaredDeadItsReferencesReclaimedAndItRejoins() throws {
        let cluster = try TestCluster(nodes: 3, deadAfterMs: 3000)
        defer { cluster.stop() }
        let c0 = try cluster.client(0), c1 = try cluster.client(1), c2 = try cluster.client(2)
        try c0.put(cid(1), data: bytes(10_000, seed: 1))
        try c1.put(cid(2), data: bytes(10_000, seed: 2))
        _ = try #require(try c1.get([cid(1)], timeoutMs: 0).first ?? nil)   // node 1 holds a reference on node 0
        #expect(try c0.delete([cid(1)]).first??.description.contains("in use") == true)
        // Traffic from node 2 while node 1 dies.
        let stop = UnsafeMutablePointer<Int>.allocate(capacity: 2)
        stop.initialize(repeating: 0, count: 2)
        defer { stop.deallocate() }
        let flag = Int(bitPattern: stop)
        let socket2 = cluster.socket(2)
        let traffic = Thread {
            let s = UnsafeMutablePointer<Int>(bitPattern: flag)!
            guard let c = try? PlenumClient(socketPath: socket2) else { return }
            while s[0] == 0 {
                if let b = try? c.get([cid(1)], timeoutMs: 0).first ?? nil { try? c.release(b); s[1] += 1 }
            }
        }
        traffic.start()
        cluster.kill(1)
        // Each survivor notices on its own (the wait is bounded generously
        // for a loaded machine; no timing asserted).
        #expect(cluster.eventually(60) { cluster.peer(1, seenBy: 0)?["alive"] as? Bool == false })
        #expect(cluster.eventually(60) { cluster.peer(1, seenBy: 2)?["alive"] as? Bool == false })
        #expect(try !c2.contains(cid(2)), "objects in the dead node's memory are forgotten")
        // Node 2's traffic holds references of its own to cid(1) in turn:
        // stop it before checking that node 1's reference was reclaimed.
        let served = stop[1]
        #expect(cluster.eventually(60) { stop[1] > served }, "node 2 kept serving after node 1 died")
        stop[0] = 1
        while !traffic.isFinished { usleep(10_000) }
        #expect(cluster.eventually(60) { (try? c0.delete([cid(1)])) == [nil] }, "node 1's reference was reclaimed")
        #expect(try c0.stats().used == 0, "no leaked bytes")
        // Restarted, it rejoins without restarting the others.
        try cluster.start(1)
        try cluster.waitAllAlive()
        let c1b = try cluster.client(1)
        try c1b.put(cid(3), data: [9, 9])
        #expect(try c2.get([cid(3)], timeoutMs: 0).first??.data == [9, 9])
        try c2.put(cid(4), data: [8])
        #expect(try c1b.get([cid(4)], timeoutMs: 0).first??.data == [8])
        #expect(cluster.stop() == [0, 0, 0])
    }

    @Test func aNodeStoppedCleanlyAndStartedAgainRejoinsWithANewRegionFile() throws {
        let cluster = try TestCluster(nodes: 3, deadAfterMs: 3000)
        defer { cluster.stop() }
        let c0 = try cluster.client(0)
        try c0.put(cid(1), data: [1])
        // SIGTERM: node 2 removes its region; its next life creates a new file.
        let p = try #require(cluster.processes[2])
        p.process.terminate()
        #expect(p.finish(timeout: 30).status == 0)
        cluster.processes[2] = nil
        #expect(cluster.eventually(60) { cluster.peer(2, seenBy: 0)?["alive"] as? Bool == false })
        try cluster.start(2)
        try cluster.waitAllAlive()
        let c2 = try cluster.client(2)
        // Homes moved when node 2 came back; node 0 re-publishes its objects
        // to their new homes asynchronously, so a get waits for it (SPEC
        // §10.4) rather than polling once.
        #expect(try c2.get([cid(1)], timeoutMs: 60_000).first??.data == [1])
        try c2.put(cid(2), data: [2, 2])
        #expect(try c0.get([cid(2)], timeoutMs: 0).first??.data == [2, 2], "node 0 mapped the new file")
        #expect(cluster.stop() == [0, 0, 0])
    }

    @Test func nodesThatShareNoMemoryTalkThroughARelay() throws {
        // 0 ↔ 1 ↔ 2: nodes 0 and 2 map neither's memory; node 1 relays.
        let cluster = try TestCluster(nodes: 3, reach: { a, b in !((a == 0 && b == 2) || (a == 2 && b == 0)) }, deadAfterMs: 3000)
        defer { cluster.stop() }
        #expect(cluster.peer(2, seenBy: 0)?["relayed_via"] as? Int == 1)
        let c0 = try cluster.client(0), c2 = try cluster.client(2)
        // Ids homed anywhere: lookups, reservations and deletes cross the relay.
        let ids = (0..<30).map { cid($0, 0x44) }
        for id in ids { try c0.put(id, data: [7]) }
        for id in ids { #expect(try c2.contains(id)) }
        for id in ids { #expect(throws: ClientError.self) { try c2.put(id, data: [8]) } }
        #expect(try c2.list().count == ids.count)
        // Node 2 cannot map node 0's memory: no zero-copy read there.
        #expect(try c2.get([ids[0]], timeoutMs: 0).first! == nil)
        #expect(try c2.delete(ids).allSatisfy { $0 == nil })
        #expect(try c0.stats().used == 0)
        // Subscribers hear of seals across the relay.
        let watcher = try cluster.client(2)
        try watcher.subscribe()
        try c0.put(cid(50), data: [5])
        // Deletions of the ids above may still be on their way (over gRPC
        // they are calls of their own, not ordered with the replies).
        var note = try watcher.nextNotification()
        while case .deleted(let d) = note, ids.contains(d) { note = try watcher.nextNotification() }
        guard case .sealed(let sid, _) = note else { Issue.record("no seal notification: \(note)"); return }
        #expect(sid == cid(50))
        // The relay dies: nodes 0 and 2 lose each other too, and keep serving.
        cluster.kill(1)
        // (A request that reached the relay before its death was noticed
        // fails with nodeUnavailable; wait until node 0 knows both are gone.)
        #expect(cluster.eventually(60) {
            cluster.peer(2, seenBy: 0)?["alive"] as? Bool == false && cluster.peer(1, seenBy: 0)?["alive"] as? Bool == false
        })
        try c0.put(cid(99), data: [1])
        #expect(try c0.contains(cid(99)))
    }

    @Test func aBarrierAcrossFourNodes() throws {
        let cluster = try TestCluster(nodes: 4)
        defer { cluster.stop() }
        let sockets = (0..<4).map { cluster.socket(NodeID($0)) }
        let passed = UnsafeMutablePointer<Int>.allocate(capacity: 4)
        passed.initialize(repeating: 0, count: 4)
        defer { passed.deallocate() }
        let at = Int(bitPattern: passed)
        var threads: [Thread] = []
        for n in 0..<3 {
            let t = Thread {
                let p = UnsafeMutablePointer<Int>(bitPattern: at)!
                if let c = try? PlenumClient(socketPath: sockets[n]), let k = try? c.barrier(42) { p[n] = k }
            }
            t.start()
            threads.append(t)
        }
        // Every thread waits at its node (the nodes' status says so); then
        // nobody has passed, since the fourth node has not arrived.
        #expect(cluster.eventually { (0..<3).allSatisfy { cluster.status(NodeID($0))?["barrier_waiters"] as? Int == 1 } })
        #expect((0..<3).allSatisfy { passed[$0] == 0 }, "nobody passes before the fourth node arrives")
        #expect(try cluster.client(3).barrier(42) == 4)
        #expect(cluster.eventually { (0..<3).allSatisfy { passed[$0] == 4 } })
    }

    @Test func aCorruptPeerRingSlotIsCountedNeverDeliveredAndTheRingRecovers() throws {
        let cluster = try TestCluster(nodes: 2, requestTimeoutMs: 10_000)
        defer { cluster.stop() }
        let c0 = try cluster.client(0), c1 = try cluster.client(1)
        let ids = (0..<20).map { cid($0, 0x33) }
        for id in ids { try c1.put(id, data: [1]) }
        // Forge the next slot of ring 0→1 (it lives in node 1's memory): the
        // expected sequence and epoch, a lying length and a wrong checksum.
        let plan = try RingPlan(cluster.config)
        let site = try #require(plan.site(from: 0, to: 1))
        let region = try Region.open(at: cluster.config.node(site.host)!.region)
        let m = region.memory()
        let seg = try SegmentTable.find("peer-links", in: m, header: region.header)
        let L = cluster.config.lineSize, slots = cluster.config.ringSlots, S = cluster.config.ringSlotSize
        let ringBase = seg.offset + site.index * (5 * L + slots * S) + 2 * L
        func shared(_ at: Int) -> UInt64 {
            m.invalidate(at: at, count: 8)
            m.fence(.full)
            return m.load64(at: at, ordering: .acquiring)
        }
        // Quiet ring: wait until the consumer has acknowledged all it took.
        #expect(cluster.eventually(60) {
            let taken = (cluster.peer(0, seenBy: 1)?["ring_in"] as? [String: Any])?["consumed"] as? Int ?? -1
            return UInt64(max(0, taken)) == shared(ringBase + 2 * L) && taken > 0
        })
        let epoch = shared(ringBase + L)
        let consumed = shared(ringBase + 2 * L)
        let before = (cluster.peer(0, seenBy: 1)?["ring_in"] as? [String: Any])?["corrupt_slots"] as? Int ?? -1
        #expect(before == 0)
        let slot = ringBase + 3 * L + Int((consumed) % UInt64(slots)) * S
        m.write(at: slot + 8, count: 24) { b in
            b.storeBytes(of: UInt32(truncatingIfNeeded: epoch).littleEndian, toByteOffset: 0, as: UInt32.self)
            b.storeBytes(of: UInt16(0x20).littleEndian, toByteOffset: 4, as: UInt16.self)   // "acquire"
            b.storeBytes(of: UInt32(20).littleEndian, toByteOffset: 8, as: UInt32.self)
            b.storeBytes(of: UInt32(0xDEAD).littleEndian, toByteOffset: 12, as: UInt32.self)
        }
        m.store64(consumed + 1, at: slot, ordering: .releasing)
        m.flush(at: slot, count: 64)
        m.fence(.store)
        #expect(cluster.eventually(60) { ((cluster.peer(0, seenBy: 1)?["ring_in"] as? [String: Any])?["corrupt_slots"] as? Int ?? 0) >= 1 })
        // Nothing wrong was delivered: no reference appeared; the ring
        // recovers (a message that landed on the forged sequence may be
        // lost and its request times out; later ones get through).
        #expect((cluster.peer(0, seenBy: 1)?["references_lent"] as? Int) == 0)
        var ok = 0
        for id in ids {
            if let b = try? c0.get([id], timeoutMs: 0).first ?? nil { ok += 1; try c0.release(b) }
        }
        #expect(ok >= ids.count - 1)
        #expect(try c0.get([ids[0]], timeoutMs: 0).first??.data == [1])
    }
}
