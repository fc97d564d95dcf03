import PlenumCluster
import PlenumMemory
import PlenumStore
import XCTest

/// The directory index (SPEC §10.4 "Directory index"): the home's writer
/// and a peer's seqlock read over real mapped memory, and the cluster core
/// answering lookups, gets and deletes from it.
final class DirectoryIndexTests: XCTestCase {
    struct Fixture {
        let mapping: Mapping
        let memory: MappedMemory
        let layout: DirectoryIndexLayout
        var writer: DirectoryIndexWriter

        init(buckets: Int, line: Int = 64, incarnation: UInt64 = 77) throws {
            let lineSize = try LineSize(line)
            layout = DirectoryIndexLayout(base: line, lineSize: line, buckets: buckets)!
            mapping = try Mapping(anonymous: (layout.base + layout.totalBytes + 4095) / 4096 * 4096)
            memory = mapping.memory(lineSize: lineSize)
            layout.format(incarnation: incarnation, in: memory)
            writer = DirectoryIndexWriter(layout: layout)
        }

        mutating func set(_ id: ObjectID, _ a: IndexAnswer?) { writer.update(id, a, in: memory) }
        func peek(_ id: ObjectID) -> IndexAnswer? { layout.peek(id, in: memory) }
    }

    func testAnEntryReadsAsTheHomeWroteItThroughEveryChange() throws {
        var f = try Fixture(buckets: 64)
        let id = oid(1)
        XCTAssertEqual(f.peek(id), .absent)
        f.set(id, .reserved(by: 5))
        XCTAssertEqual(f.peek(id), .reserved(by: 5))
        f.set(id, .sealed(owner: 3))
        XCTAssertEqual(f.peek(id), .sealed(owner: 3))
        f.set(id, .sealed(owner: 63))
        XCTAssertEqual(f.peek(id), .sealed(owner: 63))
        f.set(id, nil)
        XCTAssertEqual(f.peek(id), .absent)
        XCTAssertEqual(f.writer.indexed, 0)
        // Three words per entry: an id differing only in its last four bytes is another id.
        var b = id.bytes
        b[19] ^= 1
        f.set(id, .sealed(owner: 1))
        XCTAssertEqual(f.peek(ObjectID(bytes: b)!), .absent)
    }

    func testABucketThatOverflowedSendsReadersToTheHomeUntilItsOverflowIsGone() throws {
        var f = try Fixture(buckets: 1)                    // L = 64: 2 entries in all
        XCTAssertEqual(f.layout.perBucket, 2)
        let (a, b, c, d) = (oid(1), oid(2), oid(3), oid(4))
        f.set(a, .sealed(owner: 1))
        f.set(b, .reserved(by: 0))
        f.set(c, .sealed(owner: 2))                        // no room: private only
        XCTAssertEqual(f.writer.overflowedCount, 1)
        XCTAssertEqual(f.peek(a), .sealed(owner: 1))
        XCTAssertEqual(f.peek(b), .reserved(by: 0))
        XCTAssertNil(f.peek(c), "an overflowed entry is the home's to answer")
        XCTAssertNil(f.peek(d), "not in the bucket proves nothing while the bucket overflowed")
        f.set(a, nil)
        f.set(d, .sealed(owner: 5))                        // takes the freed slot
        XCTAssertEqual(f.peek(d), .sealed(owner: 5))
        XCTAssertNil(f.peek(c), "an overflowed entry stays private when a slot frees")
        f.set(c, nil)
        XCTAssertEqual(f.writer.overflowedCount, 0)
        XCTAssertEqual(f.peek(c), .absent)
        XCTAssertEqual(f.peek(a), .absent)
    }

    func testABucketBeingWrittenOrScribbledIsNeverAnswered() throws {
        var f = try Fixture(buckets: 4)
        let id = oid(9)
        f.set(id, .sealed(owner: 2))
        let bucket = f.layout.bucketOffset(f.layout.bucket(of: id))
        let seq = f.memory.load64(at: bucket, ordering: .relaxed)
        XCTAssertEqual(seq % 2, 0)
        f.memory.store64(seq + 1, at: bucket, ordering: .relaxed)      // a home that died mid-rewrite
        XCTAssertNil(f.peek(id))
        let neighbour = (10..<1000).lazy.map(oid).first { f.layout.bucket(of: $0) == f.layout.bucket(of: id) }!
        XCTAssertNil(f.peek(neighbour), "nor is absence read from a bucket being written")
        f.memory.store64(seq + 2, at: bucket, ordering: .relaxed)
        XCTAssertEqual(f.peek(id), .sealed(owner: 2))
        // A state byte no home writes: ask.
        for k in 0..<f.layout.perBucket {
            let w = f.layout.entryOffset(f.layout.bucket(of: id), k) + 16
            let v = f.memory.load64(at: w, ordering: .relaxed)
            if v >> 48 == 2 { f.memory.store64(v & ~(0xFF << 48) | 7 << 48, at: w, ordering: .relaxed) }
        }
        XCTAssertNil(f.peek(id))
        // An owner no cluster has (ids are 0…63), or bits that must be zero: ask.
        f.set(id, nil)
        f.set(id, .sealed(owner: 2))
        for k in 0..<f.layout.perBucket {
            let w = f.layout.entryOffset(f.layout.bucket(of: id), k) + 16
            let v = f.memory.load64(at: w, ordering: .relaxed)
            guard v >> 48 == 2 else { continue }
            f.memory.store64(v & ~(0xFFFF << 32) | 64 << 32, at: w, ordering: .relaxed)
            XCTAssertNil(f.peek(id), "owner 64")
            f.memory.store64(v | 1 << 60, at: w, ordering: .relaxed)
            XCTAssertNil(f.peek(id), "a high bit")
            f.memory.store64(v, at: w, ordering: .relaxed)
            XCTAssertEqual(f.peek(id), .sealed(owner: 2))
        }
    }

    func testAHeaderIsCheckedBeforeAnyBucketIsRead() throws {
        let f = try Fixture(buckets: 8, line: 128, incarnation: 12345)
        let found = DirectoryIndexLayout.read(at: f.layout.base, length: f.layout.totalBytes, in: f.memory)
        XCTAssertEqual(found?.layout, f.layout)
        XCTAssertEqual(found?.incarnation, 12345)
        XCTAssertNil(DirectoryIndexLayout.read(at: f.layout.base, length: f.layout.totalBytes - 128, in: f.memory),
                     "a table longer than its segment")
        XCTAssertNil(DirectoryIndexLayout.read(at: f.layout.base + 8, length: f.layout.totalBytes, in: f.memory), "unaligned")
        XCTAssertNil(DirectoryIndexLayout.read(at: f.memory.size, length: 128, in: f.memory), "outside the memory")
        for (offset, bit) in [(0, 0), (12, 0), (16, 4), (24, 0), (32, 1)] {
            f.memory.write(at: f.layout.base + offset, count: 1) { $0[0] ^= 1 << bit }
            XCTAssertNil(DirectoryIndexLayout.read(at: f.layout.base, length: f.layout.totalBytes, in: f.memory), "byte \(offset) flipped")
            f.memory.write(at: f.layout.base + offset, count: 1) { $0[0] ^= 1 << bit }
        }
        XCTAssertNotNil(DirectoryIndexLayout.read(at: f.layout.base, length: f.layout.totalBytes, in: f.memory))
        XCTAssertEqual(DirectoryIndexLayout(base: 0, lineSize: 64, entries: 65_536)?.buckets, 32_768)
        XCTAssertEqual(DirectoryIndexLayout(base: 0, lineSize: 128, entries: 65_536)?.buckets, 16_384)
        XCTAssertNil(DirectoryIndexLayout(base: 0, lineSize: 64, buckets: 3))
    }

    // MARK: the core

    /// Every node of a harness keeps an index in one shared mapping and
    /// reads its peers' (what the daemon does with the peers' regions).
    final class Indexes: @unchecked Sendable {
        let mapping: Mapping
        let memory: MappedMemory
        var layouts: [DirectoryIndexLayout] = []
        var writers: [DirectoryIndexWriter] = []

        init(nodes: Int, buckets: Int) throws {
            let per = 64 * (1 + buckets)
            mapping = try Mapping(anonymous: (nodes * per + 4095) / 4096 * 4096)
            memory = mapping.memory(lineSize: try LineSize(64))
            for i in 0..<nodes {
                let l = DirectoryIndexLayout(base: i * per, lineSize: 64, buckets: buckets)!
                l.format(incarnation: UInt64(100 + i), in: memory)
                layouts.append(l)
                writers.append(DirectoryIndexWriter(layout: l))
            }
        }
    }

    final class Reader: DirectoryPeeker, @unchecked Sendable {
        let x: Indexes
        init(_ x: Indexes) { self.x = x }
        func peek(_ id: ObjectID, at home: NodeID, incarnation: UInt64) -> IndexAnswer? {
            guard incarnation == UInt64(100 + home) else { return nil }
            return x.layouts[Int(home)].peek(id, in: x.memory)
        }
    }

    /// A harness whose nodes write their index before every batch of actions.
    func indexed(nodes: Int, buckets: Int = 256) throws -> (ClusterHarness, Indexes) {
        let x = try Indexes(nodes: nodes, buckets: buckets)
        var h = ClusterHarness(nodes: nodes)
        for i in 0..<nodes {
            h.nodes[i].indexesDirectory = true
            h.nodes[i].peeker = Reader(x)
        }
        h.beforeActions = { h, i in
            for (id, a) in h.nodes[Int(i)].takeIndexChanges() { x.writers[Int(i)].update(id, a, in: x.memory) }
        }
        return (h, x)
    }

    /// Ids homed at `home` in a stable 3-node cluster.
    func ids(homedAt home: NodeID, count: Int, in h: ClusterHarness) -> [ObjectID] {
        (0..<10_000).lazy.map(oid).filter { h.nodes[0].home(of: $0) == home }.prefix(count).map { $0 }
    }

    func testRemoteLookupsGetsAndDeletesAreAnsweredFromTheHomesIndexWithoutAskingIt() throws {
        var (h, _) = try indexed(nodes: 3)
        for i in 0..<3 { h.connect(1, on: NodeID(i)) }
        let id = ids(homedAt: 1, count: 1, in: h)[0]
        XCTAssertEqual(h.put(id, client: 1, on: 2), .sealed)           // owner 2, home 1
        let before = h.nodes[1].counters.messagesIn
        XCTAssertEqual(h.call(.contains(id), client: 1, on: 0), .contains(true))
        XCTAssertEqual(h.nodes[1].counters.messagesIn, before, "the home was not asked")
        XCTAssertEqual(h.nodes[0].counters.indexPeeks, 1)
        guard case .objects(let ls)? = h.call(.get([id], timeoutMs: 0), client: 1, on: 0), let l = ls.first ?? nil else {
            return XCTFail("the get found nothing")
        }
        XCTAssertEqual(l.region, 3, "read in node 2's memory")
        XCTAssertEqual(h.nodes[1].counters.messagesIn, before, "the get went straight to the owner")
        XCTAssertEqual(h.nodes[2].store.references(of: ClusterCore.pseudoClient(0)), 1)
        XCTAssertEqual(h.call(.release(id), client: 1, on: 0), .released)
        XCTAssertEqual(h.call(.delete([id]), client: 1, on: 0), .deleted([nil]))
        // Whatever a reply announced is in the index: no node sees the id any more.
        for i in [0, 2] as [NodeID] { XCTAssertEqual(h.call(.contains(id), client: 1, on: i), .contains(false)) }
        XCTAssertEqual(h.call(.delete([id]), client: 1, on: 0), .deleted([.notFound(id)]))
        XCTAssertEqual(h.nodes[1].directoryEntries, 0)
    }

    func testUnreadableAnswersFallBackToTheHomeAndStayRight() throws {
        var (h, x) = try indexed(nodes: 3, buckets: 1)               // 2 entries per node: most overflow
        for i in 0..<3 { h.connect(1, on: NodeID(i)) }
        let homed = ids(homedAt: 1, count: 5, in: h)
        for id in homed { XCTAssertEqual(h.put(id, client: 1, on: 2), .sealed) }
        XCTAssertEqual(x.writers[1].overflowedCount, 3)
        for id in homed { XCTAssertEqual(h.call(.contains(id), client: 1, on: 0), .contains(true)) }
        XCTAssertEqual(h.nodes[0].counters.indexPeeks, 2)
        XCTAssertEqual(h.nodes[0].counters.indexMisses, 3)
        // A blocking get of an absent id needs the home's watch: it asks, and is answered on publish.
        for id in homed { XCTAssertEqual(h.call(.delete([id]), client: 1, on: 0), .deleted([nil])) }
        XCTAssertEqual(x.writers[1].overflowedCount, 0)
        XCTAssertEqual(x.writers[1].indexed, 0)
        let unknown = ids(homedAt: 1, count: 6, in: h)[5]
        let peeks = h.nodes[0].counters.indexPeeks
        XCTAssertEqual(h.call(.contains(unknown), client: 1, on: 0), .contains(false))
        XCTAssertEqual(h.nodes[0].counters.indexPeeks, peeks + 1, "no overflow left: absence is read")
        h.replies[0].removeAll()
        h.apply(0, h.nodes[0].handle(.local(.request(1, requestId: 9, .get([unknown], timeoutMs: 60_000))), now: h.now))
        h.settle()
        XCTAssertEqual(h.nodes[1].directoryWatches, 1, "the home holds the watch")
        XCTAssertEqual(h.put(unknown, client: 1, on: 2), .sealed)
        guard case .objects(let ls)? = h.replies[0].first(where: { $0.1 == 9 })?.2 else { return XCTFail("the waiting get was not answered") }
        XCTAssertNotNil(ls.first ?? nil)
    }

    /// A read does not queue behind this node's one-way unreserve the way a
    /// lookup message did: an entry of its own that it knows is gone is
    /// asked by message, so a client's abort then delete reads its abort.
    func testAnOwnEntryTheNodeKnowsIsGoneIsAskedBehindItsOneWayUpdate() throws {
        var (h, _) = try indexed(nodes: 3)
        for i in 0..<3 { h.connect(1, on: NodeID(i)) }
        let id = ids(homedAt: 1, count: 1, in: h)[0]
        guard case .created? = h.call(.create(id, dataSize: 10, metadataSize: 0), client: 1, on: 0) else { return XCTFail("create") }
        h.replies[0].removeAll()
        h.apply(0, h.nodes[0].handle(.local(.request(1, requestId: 8, .abort(id))), now: h.now))
        XCTAssertEqual(h.replies[0].first { $0.1 == 8 }?.2, .aborted, "answered before the home heard of it")
        // The unreserve is still queued to the home; the index still says reserved by node 0.
        h.apply(0, h.nodes[0].handle(.local(.request(1, requestId: 9, .delete([id]))), now: h.now))
        h.settle()
        XCTAssertEqual(h.replies[0].first { $0.1 == 9 }?.2, .deleted([.notFound(id)]))
        XCTAssertEqual(h.nodes[0].counters.indexPeeks, 0)
        XCTAssertEqual(h.nodes[0].counters.indexMisses, 1)
    }

    func testADeadHomesIndexIsNotReadOnceItsEntriesMoved() throws {
        var (h, x) = try indexed(nodes: 3)
        for i in 0..<3 { h.connect(1, on: NodeID(i)) }
        let id = ids(homedAt: 1, count: 1, in: h)[0]
        XCTAssertEqual(h.put(id, client: 1, on: 2), .sealed)
        XCTAssertEqual(x.writers[1].indexed, 1)
        h.kill(1)
        let newHome = h.nodes[0].home(of: id)
        XCTAssertNotEqual(newHome, 1)
        XCTAssertEqual(x.writers[Int(newHome)].indexed, 1, "the re-published entry is in its new home's index")
        // Node 1's memory still holds the entry; nobody reads it.
        XCTAssertEqual(x.layouts[1].peek(id, in: x.memory), .sealed(owner: 2))
        XCTAssertEqual(h.call(.delete([id]), client: 1, on: 0), .deleted([nil]))
        for i in [0, 2] as [NodeID] { XCTAssertEqual(h.call(.contains(id), client: 1, on: i), .contains(false)) }
    }
}
