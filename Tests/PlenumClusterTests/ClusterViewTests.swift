import PlenumCluster
import PlenumMemory
import XCTest

/// The view a store publishes for its clients' peeks (SPEC §10.4 "Client
/// peeks"): what the writer wrote is what a reader copies, and a reader
/// takes nothing from a record being rewritten or not written at all.
final class ClusterViewTests: XCTestCase {
    func fixture() throws -> (Mapping, MappedMemory, ClusterViewLayout) {
        let mapping = try Mapping(anonymous: 2 * 4096)
        let memory = mapping.memory(lineSize: try LineSize(64))
        let layout = try XCTUnwrap(ClusterViewLayout(base: 4096, length: ClusterViewLayout.segmentBytes, size: memory.size))
        return (mapping, memory, layout)
    }

    func testAReaderCopiesTheViewTheWriterWroteThroughEveryChange() throws {
        let (_, m, layout) = try fixture()
        XCTAssertNil(layout.read(in: m), "never written: seq 0")
        var seq: UInt64 = 0
        layout.write(me: 2, members: [2: .init(incarnation: 9, handle: 0, mapped: true)], seq: &seq, in: m)
        var (v, s) = try XCTUnwrap(layout.read(in: m))
        XCTAssertEqual(v.me, 2)
        XCTAssertEqual(v.live, [2])
        XCTAssertEqual(s, seq)
        XCTAssertEqual(layout.sequence(in: m), seq)
        let members: [NodeID: ClusterViewLayout.Member] = [2: .init(incarnation: 9, handle: 0, mapped: true),
                                                           0: .init(incarnation: 5, handle: 3, mapped: true),
                                                           63: .init(incarnation: .max, handle: 1 << 31, mapped: false),
                                                           7: .init(incarnation: 1, handle: 4, mapped: false)]
        layout.write(me: 2, members: members, seq: &seq, in: m)
        (v, s) = try XCTUnwrap(layout.read(in: m))
        XCTAssertEqual(v.live, [2, 0, 7, 63], "this node first, then ascending (Home.of's order)")
        XCTAssertEqual(v.members, members)
        XCTAssertEqual(s, 4)
        // A node leaves: its row is gone, not left behind.
        layout.write(me: 2, members: members.filter { $0.key != 7 }, seq: &seq, in: m)
        (v, _) = try XCTUnwrap(layout.read(in: m))
        XCTAssertEqual(v.live, [2, 0, 63])
        XCTAssertNil(v.members[7])
    }

    func testARecordBeingRewrittenOrScribbledIsNotRead() throws {
        let (_, m, layout) = try fixture()
        var seq: UInt64 = 0
        layout.write(me: 1, members: [1: .init(incarnation: 9, handle: 0, mapped: true)], seq: &seq, in: m)
        XCTAssertNotNil(layout.read(in: m))
        m.store64(seq + 1, at: 4096, ordering: .relaxed)          // a rewrite under way
        XCTAssertNil(layout.read(in: m))
        m.store64(seq + 2, at: 4096, ordering: .relaxed)
        XCTAssertNotNil(layout.read(in: m))
        m.store64(0x1234, at: 4096 + 8, ordering: .relaxed)        // magic scribbled
        XCTAssertNil(layout.read(in: m))
        layout.write(me: 1, members: [1: .init(incarnation: 9, handle: 0, mapped: true)], seq: &seq, in: m)
        XCTAssertNotNil(layout.read(in: m))
        m.store64(0, at: 4096 + 16, ordering: .relaxed)            // its own node not live
        XCTAssertNil(layout.read(in: m))
        XCTAssertNil(ClusterViewLayout(base: 4096, length: 1000, size: m.size), "a segment too short for the record")
        XCTAssertNil(ClusterViewLayout(base: 2 * 4096 - 64, length: 4096, size: m.size), "a record past the memory's end")
    }
}
