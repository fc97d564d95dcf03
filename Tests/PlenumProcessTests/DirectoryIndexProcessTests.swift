import Foundation
import PlenumClient
import PlenumCluster
import PlenumStore
import Testing

/// The directory index across real stores (SPEC §10.4 "Directory index"):
/// peers answer lookups, gets and deletes from the home's table in its
/// region file, and what a reply announced is in it.
@Suite(.serialized) struct DirectoryIndexProcessTests {
    static func index(_ cluster: TestCluster, _ n: NodeID) -> [String: Int] {
        (cluster.status(n)?["directory_index"] as? [String: Any] ?? [:]).compactMapValues { $0 as? Int }
    }

    static func homed(at home: NodeID, among live: [NodeID], count: Int, tag: UInt8) -> [ObjectID] {
        Array((0..<100_000).lazy.map { cid($0, tag) }.filter { Home.of($0, among: live) == home }.prefix(count))
    }

    @Test func peersReadTheHomesIndexAndSeeEveryAnnouncedChange() throws {
        let cluster = try TestCluster(nodes: 3)
        defer { cluster.stop() }
        let ids = Self.homed(at: 1, among: [0, 1, 2], count: 40, tag: 0x91)
        let c0 = try cluster.client(0), c2 = try cluster.client(2)
        c0.readsIndexes = false      // the store peeks (ClientPeekProcessTests: the client)
        for (i, id) in ids.enumerated() { try c2.put(id, data: [UInt8(i), 9]) }     // owner 2, home 1
        #expect(Self.index(cluster, 1)["indexed"] == ids.count)
        for id in ids { #expect(try c0.contains(id)) }
        for (i, id) in ids.enumerated() {
            let b = try #require(try c0.get([id], timeoutMs: 0).first ?? nil, "get \(i)")
            #expect(try b.data == [UInt8(i), 9])
            try c0.release(b)
        }
        let seen = Self.index(cluster, 0)
        #expect(seen["peeks"] == 2 * ids.count && seen["peeks_asked"] == 0, "\(seen)")
        // Deleted through node 0: every node, the home included, sees it gone at once.
        #expect(try c0.delete(ids).allSatisfy { $0 == nil })
        #expect(Self.index(cluster, 1)["indexed"] == 0)
        for n: NodeID in [0, 1, 2] {
            let c = try cluster.client(n)
            #expect(try c.contains(ids, window: 8).allSatisfy { !$0 }, "node \(n) still sees a deleted id")
        }
        let again = try c0.delete([ids[0]])
        #expect(again.count == 1 && "\(again[0].map { "\($0)" } ?? "")".contains("does not exist"), "\(again)")
    }

    @Test func aRestartedHomesNewIndexIsReadNotItsOldOne() throws {
        let cluster = try TestCluster(nodes: 3)
        defer { cluster.stop() }
        let ids = Self.homed(at: 1, among: [0, 1, 2], count: 20, tag: 0x92)
        let c0 = try cluster.client(0), c2 = try cluster.client(2)
        c0.readsIndexes = false      // the store peeks (ClientPeekProcessTests: the client)
        for id in ids { try c2.put(id, data: [3]) }
        #expect(try c0.contains(ids, window: 4).allSatisfy { $0 })
        let before = Self.index(cluster, 0)["peeks"] ?? 0
        // The home dies and comes back with a new region file: node 2
        // re-publishes its objects there; node 0 reads the new life's table.
        cluster.kill(1)
        try cluster.start(1)
        try cluster.waitAllAlive()
        #expect(cluster.eventually(60) { Self.index(cluster, 1)["indexed"] == ids.count }, "\(Self.index(cluster, 1))")
        #expect(try c0.contains(ids, window: 4).allSatisfy { $0 })
        #expect(try c2.delete(ids).allSatisfy { $0 == nil })
        #expect(try c0.contains(ids, window: 4).allSatisfy { !$0 })
        #expect((Self.index(cluster, 0)["peeks"] ?? 0) >= before + 2 * ids.count)
    }
}
