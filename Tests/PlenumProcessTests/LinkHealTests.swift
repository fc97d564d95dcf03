import Foundation
import PlenumClient
import PlenumCluster
import PlenumMemory
import PlenumRegion
import PlenumStore
import PlenumWire
import Testing

/// Link blocks scribbled over in shared memory (issue 23, SPEC §10.3
/// "Repair", "Heartbeats do not need the ring"): the pair heals without a
/// restart, a silent peer is fenced even while its ring is broken, and a
/// restarted peer meets its partner again.
@Suite(.serialized) struct LinkHealTests {
    enum Scribble: String, CaseIterable, CustomTestStringConvertible {
        /// Garbage over the ring descriptor and the consumer line.
        case descriptorAndConsumerLine
        /// Garbage over the consumer line only: an absurd reset request,
        /// acknowledgement and epoch.
        case consumerLine
        var testDescription: String { rawValue }
    }

    /// Writes 0xA5 bytes over the lines of block p→c that `what` names, in
    /// the memory of the node hosting it, and writes them back.
    static func scribble(_ cluster: TestCluster, from p: NodeID, to c: NodeID, _ what: Scribble) throws {
        let plan = try RingPlan(cluster.config)
        let site = try #require(plan.site(from: p, to: c))
        let region = try Region.open(at: cluster.config.node(site.host)!.region)
        let m = region.memory()
        let seg = try SegmentTable.find("peer-links", in: m, header: region.header)
        let L = cluster.config.lineSize
        let block = seg.offset + site.index * (5 * L + cluster.config.ringSlots * cluster.config.ringSlotSize)
        let ring = block + 2 * L
        let lines = what == .consumerLine ? [ring + 2 * L] : [ring, ring + 2 * L]
        for line in lines {
            m.write(at: line, count: L) { _ = $0.initializeMemory(as: UInt8.self, repeating: 0xA5) }
            m.fence(.store)
            m.flush(at: line, count: L)
            m.fence(.store)
        }
    }

    /// `count` ids whose home is `home` while every node of `live` is up.
    static func ids(homedAt home: NodeID, among live: [NodeID], count: Int, tag: UInt8) -> [ObjectID] {
        var out: [ObjectID] = []
        var k = 0
        while out.count < count {
            let id = cid(k, tag)
            if Home.of(id, among: live) == home { out.append(id) }
            k += 1
        }
        return out
    }

    static func ringOut(_ cluster: TestCluster, to p: NodeID, seenBy n: NodeID) -> [String: Any]? {
        cluster.peer(p, seenBy: n)?["ring_out"] as? [String: Any]
    }

    @Test(arguments: Scribble.allCases)
    func aScribbledLinkBlockHealsWithoutARestartAndResetsOnce(_ what: Scribble) throws {
        // 16 slots: the producer reads the consumer line (and meets the
        // damage) once 16 messages are outstanding by its count (§5.3 step 2).
        // Lookups travel the damaged ring (no directory index, SPEC §10.4).
        let cluster = try TestCluster(nodes: 2, tag: "heal\(what.rawValue)", requestTimeoutMs: 2_000) { $0.ringSlots = 16; $0.directoryIndex = 0 }
        defer { cluster.stop() }
        let c0 = try cluster.client(0), c1 = try cluster.client(1)
        let ids = Self.ids(homedAt: 1, among: [0, 1], count: 8, tag: 0x51)
        for id in ids { try c1.put(id, data: [1]) }
        let all = [Bool](repeating: true, count: ids.count)
        #expect(try c0.contains(ids, window: 1) == all)
        try Self.scribble(cluster, from: 0, to: 1, what)
        // Node 0's lookups go to node 1 over the damaged ring. Some are lost
        // while it heals (they time out); then every one is answered.
        #expect(cluster.eventually(120) { (try? c0.contains(ids, window: 1)) == all }, "the pair did not heal: \(cluster.peer(1, seenBy: 0) ?? [:])")
        if what == .descriptorAndConsumerLine {
            #expect((cluster.status(1)?["link_blocks_repaired"] as? Int ?? 0) >= 1, "the host rewrote the descriptor")
        }
        // Healed for good: four more laps of the ring, no further reset.
        let epoch = Self.ringOut(cluster, to: 1, seenBy: 0)?["epoch"] as? Int
        for _ in 0..<8 { #expect(try c0.contains(ids, window: 1) == all) }
        #expect(Self.ringOut(cluster, to: 1, seenBy: 0)?["epoch"] as? Int == epoch, "the ring keeps resetting")
        #expect((cluster.peer(0, seenBy: 1)?["ring_in"] as? [String: Any])?["epoch"] as? Int == epoch, "the consumer adopted the epoch")
        // The warnings stayed aggregated (one line per kind per 10 s, SPEC §9.4).
        let p0 = try #require(cluster.processes[0])
        p0.process.terminate()
        let log = p0.finish(timeout: 30).stderr
        cluster.processes[0] = nil
        let unusable = log.split(separator: "\n").filter { $0.contains("peer ring unusable") }.count
        #expect(unusable <= 3, "\(unusable) lines of 'peer ring unusable'")
    }

    @Test func aPeerWhoseRingIsBrokenIsFencedWhenSilentAndMeetsItsPartnerWhenRestarted() throws {
        let cluster = try TestCluster(nodes: 2, deadAfterMs: 3_000, requestTimeoutMs: 2_000) { $0.ringSlots = 16; $0.directoryIndex = 0 }
        defer { cluster.stop() }
        let ids = Self.ids(homedAt: 1, among: [0, 1], count: 40, tag: 0x52)
        // Node 1 stops (no heartbeat, no repair), its block 0→1 is scribbled
        // over, and node 0 sends it more than a ring of lookups: the post
        // that finds the ring full reads the damaged consumer line and drops
        // the ring (corruptPeer), which cannot attach again.
        let p1 = try #require(cluster.processes[1]).process.processIdentifier
        Glibc.kill(p1, SIGSTOP)
        try Self.scribble(cluster, from: 0, to: 1, .descriptorAndConsumerLine)
        let flood = try cluster.client(0)
        for id in ids { _ = try flood.submit(StoreRequest.contains(id)) }
        try flood.flush()
        // A link's last error is set only by a failed attach, which node 0
        // tries only once it has dropped the ring (not its state: the
        // stopped node is fenced for silence anyway).
        #expect(cluster.eventually(60) { cluster.peer(1, seenBy: 0)?["last_error"] != nil },
                "node 0 never dropped the damaged ring: \(cluster.peer(1, seenBy: 0) ?? [:])")
        // Its heartbeat is silent: fenced, broken ring or not.
        #expect(cluster.eventually(60) { cluster.peer(1, seenBy: 0)?["alive"] as? Bool == false }, "\(cluster.peer(1, seenBy: 0) ?? [:])")
        // A new life of node 1 meets node 0 again; nobody else restarts.
        cluster.kill(1)
        try cluster.start(1)
        try cluster.waitAllAlive()
        let c0 = try cluster.client(0), c1 = try cluster.client(1)
        try c1.put(ids[0], data: [4, 2])
        #expect(try c0.get([ids[0]], timeoutMs: 60_000).first??.data == [4, 2])
        try c0.put(ids[1], data: [7])
        #expect(try c1.get([ids[1]], timeoutMs: 60_000).first??.data == [7])
    }
}
