import Foundation
import PlenumCluster
import PlenumStore
import Testing
@testable import PlenumGRPC

/// The protobuf mapping of every §10.5 message (SPEC §10.11).
@Suite struct EnvelopeCodecTests {
    static let id = ObjectID(bytes: (0..<20).map { UInt8($0 &* 7 &+ 1) })!
    static let loc = ObjectLocation(offset: 4096, dataSize: 1000, metadataSize: 24, reserved: 1024 + 128, region: 0)

    /// One of every message the transports carry, with distinct field values.
    static let every: [PeerMessage] = [
        // Views are the rings' alone (SPEC §10.4 "Views"): gRPC carries view 0.
        .reserve(id, view: 0), .unreserve(id),
        .publish(id, owner: 2, creator: 3, location: loc, digest: 0xDEAD_BEEF_0123_4567, view: 0),
        .unpublish(id, owner: 5), .lookup(id, watch: true), .lookup(id, watch: false),
        .published(id, owner: 1, location: loc, digest: 9), .unwatch(id),
        .lookupReply(.sealed, owner: 3, location: loc, digest: 11), .lookupReply(.reserved, owner: 0, location: ObjectLocation(offset: 0, dataSize: 0, metadataSize: 0, reserved: 0), digest: 0),
        .acquire(id), .acquireReply(code: 0, location: loc, digest: 12), .acquireReply(code: 7, location: loc, digest: 0),
        .release(id), .allocate(id, dataSize: 1 << 40, metadataSize: 3), .allocateReply(code: 0, location: loc),
        .seal(id, digest: .max), .abort(id), .delete(id), .result(code: 0xFFFF),
        .notifySealed(id, owner: 63, location: loc, digest: 1), .notifyDeleted(id),
        .barrierArrive(name: 0xABCDEF, round: 4), .barrierRelease(name: 0xABCDEF, round: 0, nodes: 4), .list,
        .listChunk([ObjectInfo(id: id, location: loc, state: .sealed, refCount: 3, createdNanos: 77, constructNanos: 5, digest: 8),
                    ObjectInfo(id: id, location: loc, state: .sealed, refCount: 0, createdNanos: 78, constructNanos: nil, digest: 0)], last: false),
        .listChunk([], last: true),
    ]

    @Test func everyMessageRoundTripsThroughBytesWithItsSenderAndCorrelation() throws {
        #expect(Set(Self.every.map(\.kind.rawValue)).count == 23, "every §10.5 kind but hello, relay, view, rehomed and the forwarded ones")
        for (i, m) in Self.every.enumerated() {
            let e = try EnvelopeCodec.encode(m, from: 3, correlation: UInt64(i) << 40 | 1)
            let wire = try e.serializedBytes() as [UInt8]
            let back = try Plenum_Peer_V1_Envelope(serializedBytes: wire)
            #expect(back.from == 3 && back.correlation == UInt64(i) << 40 | 1)
            #expect(try EnvelopeCodec.decode(back) == m, "\(m)")
        }
    }

    @Test func ringOnlyMessagesAreNeverCarried() {
        #expect(throws: EnvelopeCodec.Failure.self) { try EnvelopeCodec.encode(.hello(incarnation: 1), from: 0, correlation: 0) }
        #expect(throws: EnvelopeCodec.Failure.self) {
            try EnvelopeCodec.encode(.relay(to: 1, from: 0, kind: 0x10, correlation: 1, body: []), from: 0, correlation: 0)
        }
        // Forwarded acquires are the rings' alone (SPEC §10.6 "get", §10.11).
        let id = ObjectID(bytes: [UInt8](repeating: 4, count: 20))!
        #expect(throws: EnvelopeCodec.Failure.self) { try EnvelopeCodec.encode(.lookupAcquire(id, watch: false), from: 0, correlation: 1) }
        #expect(throws: EnvelopeCodec.Failure.self) { try EnvelopeCodec.encode(.acquireFor(id, reader: 2, incarnation: 3), from: 0, correlation: 1) }
        // And forwarded deletes and creates (SPEC §10.6 "delete", "create").
        #expect(throws: EnvelopeCodec.Failure.self) { try EnvelopeCodec.encode(.unpublishFor(id, owner: 1, requester: 2), from: 1, correlation: 1) }
        #expect(throws: EnvelopeCodec.Failure.self) {
            try EnvelopeCodec.encode(.reserveAllocate(id, view: 0, owner: 2, dataSize: 1, metadataSize: 0), from: 0, correlation: 1)
        }
        #expect(throws: EnvelopeCodec.Failure.self) {
            try EnvelopeCodec.encode(.allocateFor(id, dataSize: 1, metadataSize: 0, creator: 0, incarnation: 3), from: 1, correlation: 1)
        }
        // So are views (SPEC §10.4 "Views"): they need FIFO links.
        #expect(throws: EnvelopeCodec.Failure.self) { try EnvelopeCodec.encode(.view(7), from: 0, correlation: 0) }
    }

    /// What a hostile or broken peer can put in the fields protobuf does not
    /// constrain is refused, as the ring decoder refuses it.
    @Test func badFieldsAreRefused() throws {
        func refused(_ build: (inout Plenum_Peer_V1_Envelope) -> Void) -> Bool {
            var e = Plenum_Peer_V1_Envelope()
            e.from = 1
            e.correlation = 9
            build(&e)
            do { _ = try EnvelopeCodec.decode(e); return false } catch { return true }
        }
        #expect(refused { _ in })  // no message
        #expect(refused { $0.acquire = .with { $0.id = Data(count: 19) } })
        #expect(refused { $0.acquire = .with { $0.id = Data(count: 21) } })
        #expect(refused { $0.result = .with { $0.code = 0x1_0000 } })
        #expect(refused { $0.lookupReply = .with { $0.state = 3 } })
        #expect(refused { $0.publish = .with { $0.id = Data(Self.id.bytes); $0.location = .with { $0.metadataSize = -1 } } })
        #expect(refused { $0.allocateReply = .with { $0.location = .with { $0.offset = -4096 } } })
        #expect(refused { $0.acquireReply = .with { $0.location = .with { $0.offset = .max; $0.dataSize = 10 } } })
        #expect(refused {
            $0.listChunk = .with { c in c.rows = (0..<10).map { _ in .with { $0.id = Data(Self.id.bytes) } } }
        })
        #expect(refused { $0.listChunk = .with { c in c.rows = [.with { $0.id = Data(Self.id.bytes); $0.refCount = -1 }] } })
        // The same fields in range are accepted.
        #expect(!refused { $0.acquire = .with { $0.id = Data(Self.id.bytes) } })
        #expect(!refused { $0.listChunk = .with { c in c.rows = (0..<9).map { _ in .with { $0.id = Data(Self.id.bytes) } } } })
    }

    @Test func repliesAreToldFromRequests() {
        let replies = Self.every.filter { EnvelopeCodec.isReply($0.kind) }.map(\.kind)
        #expect(Set(replies) == [.lookupReply, .acquireReply, .allocateReply, .result, .listChunk])
        #expect(Self.every.filter(\.expectsReply).allSatisfy { !EnvelopeCodec.isReply($0.kind) })
    }
}
