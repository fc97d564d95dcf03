import Foundation
import PlenumClient
import PlenumCluster
import PlenumStore
import Testing

/// Clients read directory indexes themselves (SPEC §10.4 "Client peeks"):
/// a lookup answered from the home's table with no message to the store,
/// the same answer the store would give, never ahead of the client's own
/// requests, and always in the store's current view of the cluster.
@Suite(.serialized) struct ClientPeekProcessTests {
    static func index(_ cluster: TestCluster, _ n: NodeID) -> [String: Int] {
        DirectoryIndexProcessTests.index(cluster, n)
    }

    /// Lookups node n's store answered (its `contains` count, SPEC §10.9 "Metrics").
    static func storeLookups(_ c: PlenumClient) throws -> Double {
        try c.metrics().split(separator: "\n").filter { $0.hasPrefix("plenum_operations_total{") && $0.contains("op=\"contains\"") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }

    @Test(.enabled(if: TestCluster.transport == .rings, "no indexes over gRPC (§10.11)"))
    func aClientAnswersLookupsFromTheHomesIndexWithoutItsStore() throws {
        let cluster = try TestCluster(nodes: 3)
        defer { cluster.stop() }
        let live: [NodeID] = [0, 1, 2]
        let remote = DirectoryIndexProcessTests.homed(at: 1, among: live, count: 30, tag: 0xA1)
        let own = DirectoryIndexProcessTests.homed(at: 0, among: live, count: 10, tag: 0xA2)
        let missing = DirectoryIndexProcessTests.homed(at: 2, among: live, count: 10, tag: 0xA3)
        let ownMissing = DirectoryIndexProcessTests.homed(at: 0, among: live, count: 10, tag: 0xA3)
        let c0 = try cluster.client(0), c2 = try cluster.client(2)
        for id in remote + own { try c2.put(id, data: [7]) }                  // owner 2; homes 1 and 0
        let asked = try Self.storeLookups(c0)
        #expect(try c0.contains(remote + own, window: 8).allSatisfy { $0 })
        #expect(try (remote + own).allSatisfy { id throws(ClientError) in try c0.contains(id) })
        // Absent in this store's own table: answered here; absent in another
        // home's: the store's own memory might hold it (a publication on
        // the way), so the store answers.
        #expect(try c0.contains(ownMissing, window: 8).allSatisfy { !$0 })
        #expect(try c0.contains(missing, window: 8).allSatisfy { !$0 })
        let n = 2 * (remote + own).count + ownMissing.count
        #expect(c0.indexPeekCounts == (answered: n, asked: missing.count), "\(c0.indexPeekCounts)")
        #expect(try Self.storeLookups(c0) == asked + Double(missing.count), "the store answered lookups the client could read")
        // A delete through another node is seen at once (its reply waited for the home).
        #expect(try c2.delete(remote + own).allSatisfy { $0 == nil })
        #expect(try c0.contains(remote + own, window: 8).allSatisfy { !$0 })
        #expect(c0.indexPeekCounts == (answered: n + own.count, asked: missing.count + remote.count), "\(c0.indexPeekCounts)")
        // Off, the same lookups go to the store and get the same answers.
        for id in own { try c2.put(id, data: [8]) }
        c0.readsIndexes = false
        #expect(try c0.contains(remote + own, window: 8) == remote.map { _ in false } + own.map { _ in true })
        #expect(try Self.storeLookups(c0) == asked + Double(missing.count + 2 * remote.count + own.count))
    }

    @Test(.enabled(if: TestCluster.transport == .rings, "no indexes over gRPC (§10.11)"))
    func aLookupNeverOvertakesTheClientsOwnRequests() throws {
        let cluster = try TestCluster(nodes: 3)
        defer { cluster.stop() }
        let live: [NodeID] = [0, 1, 2]
        let ids = DirectoryIndexProcessTests.homed(at: 1, among: live, count: 20, tag: 0xA4)
        let c0 = try cluster.client(0), c2 = try cluster.client(2)
        // Sealed here, homed at node 1: each seal is still out (its publish
        // on the way to the home) when the lookup behind it is submitted.
        // (An entry of this node in another home's index is the store's to
        // judge anyway; the delete below is the sharp case.)
        for id in ids {
            let l = try c0.create(id, dataSize: 3)
            c0.write(l, data: { $0.copyBytes(from: [1, 2, 3]) })
            let digest = ObjectMemory.digest(try c0.memory(for: l), l)
            let seal = try c0.submit(.seal(id, digest: digest))
            let lookup = try c0.submit(.contains(id))
            #expect(try c0.wait(seal) == .sealed)
            #expect(try c0.wait(lookup) == .contains(true), "a lookup overtook the seal of \(id)")
        }
        let asked = c0.indexPeekCounts.asked
        #expect(try c0.contains(ids, window: 8).allSatisfy { $0 })
        #expect(c0.indexPeekCounts.asked == asked + ids.count)
        // Homed and held here: the store deletes at once, so a lookup
        // submitted behind a delete must see it gone — it may not be read
        // from the index before the store has taken the delete.
        let mine = DirectoryIndexProcessTests.homed(at: 0, among: live, count: 20, tag: 0xA6)
        for id in mine {
            try c0.put(id, data: [4])
            let delete = try c0.submit(.delete([id]))
            let lookup = try c0.submit(.contains(id))
            #expect(try c0.wait(delete) == .deleted([nil]))
            #expect(try c0.wait(lookup) == .contains(false), "a lookup overtook the delete of \(id)")
        }
        // A quiet release is applied before the next request: a lookup
        // behind it goes to the store until a later reply shows it applied.
        let theirs = DirectoryIndexProcessTests.homed(at: 0, among: live, count: 2, tag: 0xA7)
        for id in theirs { try c2.put(id, data: [5]) }
        #expect(try c0.contains(theirs[1]))
        let before = c0.indexPeekCounts
        let held = try c0.get([theirs[0]], timeoutMs: 0).compactMap { $0 }
        #expect(held.count == 1)
        try c0.release(held)
        #expect(try c0.contains(theirs[1]))
        #expect(try c0.contains(theirs[1]))
        #expect(c0.indexPeekCounts == (answered: before.answered + 1, asked: before.asked + 1), "\(before) → \(c0.indexPeekCounts)")
    }

    @Test(.enabled(if: TestCluster.transport == .rings, "no indexes over gRPC (§10.11)"))
    func peeksFollowTheStoresViewThroughADeathAndARestart() throws {
        let cluster = try TestCluster(nodes: 3, deadAfterMs: 3000)
        defer { cluster.stop() }
        let ids = DirectoryIndexProcessTests.homed(at: 1, among: [0, 1, 2], count: 20, tag: 0xA5)
        let c0 = try cluster.client(0), c2 = try cluster.client(2)
        for id in ids { try c2.put(id, data: [5]) }                          // owner 2, home 1
        // Held here, homed at node 1: whenever node 1 leaves or comes
        // back, node 0 re-publishes them to their new homes one-way, and
        // until those arrive the new home's table does not show them —
        // a lookup from node 0 must still find every one, all along.
        let mine = DirectoryIndexProcessTests.homed(at: 1, among: [0, 1, 2], count: 40, tag: 0xA8)
        for id in mine { try c0.put(id, data: [4]) }
        var lookups = 0
        func allMineFound() -> Bool {
            lookups += 1
            return (try? c0.contains(mine, window: 8).allSatisfy { $0 }) == true
        }
        #expect(try c0.contains(ids, window: 4).allSatisfy { $0 })
        let peeked = c0.indexPeekCounts.answered
        #expect(peeked == ids.count)
        // Node 1 dies: once node 0 knows, its client looks up the ids at
        // their new homes (node 2 re-published them there), not in the dead
        // node's table, which still shows them.
        cluster.kill(1)
        var lost = 0
        #expect(cluster.eventually(60) {
            if !allMineFound() { lost += 1 }
            return cluster.peer(1, seenBy: 0)?["alive"] as? Bool == false
        })
        for _ in 0..<200 where !allMineFound() { lost += 1 }
        #expect(lost == 0, "\(lost) of \(lookups) rounds missed an object held by the asking node while node 1 left")
        #expect(cluster.eventually(60) { cluster.peer(1, seenBy: 2)?["alive"] as? Bool == false })
        #expect(cluster.eventually(60) { (try? c0.contains(ids, window: 4).allSatisfy { $0 }) == true })
        #expect(try c2.delete(ids).allSatisfy { $0 == nil })
        #expect(try c0.contains(ids, window: 4).allSatisfy { !$0 }, "a lookup read a dead home's table")
        // Back with a new life (a new region file, a new handle): the
        // client maps it and reads the new life's table.
        try cluster.start(1)
        #expect(cluster.eventually(60) {
            if !allMineFound() { lost += 1 }
            return cluster.peer(1, seenBy: 0)?["alive"] as? Bool == true
        })
        for _ in 0..<200 where !allMineFound() { lost += 1 }
        #expect(lost == 0, "\(lost) of \(lookups) rounds missed an object held by the asking node while node 1 came back")
        try cluster.waitAllAlive()
        for id in ids { try c2.put(id, data: [6]) }
        #expect(cluster.eventually(60) { Self.index(cluster, 1)["indexed"] == ids.count + mine.count }, "\(Self.index(cluster, 1))")
        let answered = c0.indexPeekCounts.answered
        #expect(try c0.contains(ids, window: 4).allSatisfy { $0 })
        #expect(c0.indexPeekCounts.answered == answered + ids.count, "\(c0.indexPeekCounts)")
        #expect(c0.regions.contains { $0.node == 1 }, "node 1's new region is mapped")
    }
}
