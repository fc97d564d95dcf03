import PlenumCluster
import PlenumStore
import PlenumWire
import XCTest

final class PeerMessageTests: XCTestCase {
    let l = ObjectLocation(offset: 4096, dataSize: 10, metadataSize: 2, reserved: 128, region: 3)

    func testEveryMessageRoundTrips() throws {
        let id = oid(1)
        let info = ObjectInfo(id: id, location: l, state: .sealed, refCount: 2, createdNanos: 5, constructNanos: 7, digest: 9)
        let all: [PeerMessage] = [
            .hello(incarnation: 5), .reserve(id, view: 11), .unreserve(id), .unwatch(id), .view(0xFEED), .publish(id, owner: 1, creator: 2, location: l, digest: 3, view: 12),
            .unpublish(id, owner: 1), .unpublishFor(id, owner: 1, requester: 3), .reserveAllocate(id, view: 9, owner: 2, dataSize: 100, metadataSize: 5), .allocateFor(id, dataSize: 1, metadataSize: 2, creator: 3, incarnation: 4), .lookup(id, watch: true), .lookupAcquire(id, watch: false), .acquireFor(id, reader: 3, incarnation: 0x0102_0304_0506_0708), .lookupReply(.sealed, owner: 2, location: l, digest: 4),
            .published(id, owner: 1, location: l, digest: 2), .acquire(id), .acquireReply(code: 0, location: l, digest: 1),
            .release(id), .allocate(id, dataSize: 5, metadataSize: 6), .allocateReply(code: 10, location: l), .seal(id, digest: 8),
            .abort(id), .delete(id), .result(code: 5), .notifySealed(id, owner: 0, location: l, digest: 1), .notifyDeleted(id),
            .barrierArrive(name: 1, round: 2), .barrierRelease(name: 1, round: 2, nodes: 4), .list,
            .relay(to: 2, from: 0, kind: PeerMessage.Kind.lookup.rawValue, correlation: 9, body: PeerMessage.lookup(id, watch: true).encodeBody()),
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

    func testARelayInsideARelayIsRefused() {
        let inner = PeerMessage.relay(to: 1, from: 0, kind: PeerMessage.Kind.list.rawValue, correlation: 1, body: [])
        let outer = PeerMessage.relay(to: 2, from: 0, kind: PeerMessage.Kind.relay.rawValue, correlation: 0, body: inner.encodeBody())
        XCTAssertThrowsError(try PeerMessage.decode(kind: PeerMessage.Kind.relay.rawValue, body: outer.encodeBody()))
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
        // An allocate of a negative size (a creator checks sizes before it asks, §10.6).
        for (d, m) in [(-1, 0), (0, -5)] {
            XCTAssertThrowsError(try PeerMessage.decode(kind: PeerMessage.Kind.allocate.rawValue,
                                                        body: PeerMessage.allocate(oid(1), dataSize: d, metadataSize: m).encodeBody()))
        }
        // A location whose end overflows.
        let huge = PeerMessage.acquireReply(code: 0, location: ObjectLocation(offset: Int.max - 4, dataSize: 10, metadataSize: 0, reserved: 0), digest: 0)
        XCTAssertThrowsError(try PeerMessage.decode(kind: PeerMessage.Kind.acquireReply.rawValue, body: huge.encodeBody()))
    }

    /// Home.of against SPEC §10.4's definition, written out byte by byte
    /// here: every implementation must pick the same home.
    func testHomeFollowsTheSpecsByteByByteDefinition() {
        func mix(_ x: UInt64) -> UInt64 {
            var z = x &+ 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        func key(_ b: [UInt8]) -> UInt64 {
            var v: UInt64 = 0
            for i in 0..<20 { v ^= UInt64(b[i]) << UInt64(8 * (i % 8)); if i % 8 == 7 { v = mix(v) } }
            return v
        }
        var seed: UInt64 = 0x1234_5678
        for _ in 0..<500 {
            let bytes = (0..<20).map { _ in seed = mix(seed); return UInt8(truncatingIfNeeded: seed) }
            let id = ObjectID(bytes: bytes)!
            let live: [NodeID] = [0, 1, 2, 5, 9]
            let expected = live.max { a, b in
                let wa = mix(key(bytes) ^ ((UInt64(a) &+ 1) &* 0x9E37_79B9_7F4A_7C15))
                let wb = mix(key(bytes) ^ ((UInt64(b) &+ 1) &* 0x9E37_79B9_7F4A_7C15))
                return wa < wb || (wa == wb && a > b)
            }!
            XCTAssertEqual(Home.of(id, among: live), expected)
        }
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
