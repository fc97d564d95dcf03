import PlenumStore
import PlenumWire
import Testing

@Suite struct WireTests {
    static let requests: [StoreRequest] = [
        .create(oid(1), dataSize: 1 << 33, metadataSize: 7), .seal(oid(2), digest: .max), .abort(oid(3)),
        .get([oid(1), oid(2)], timeoutMs: -1), .get([], timeoutMs: 0), .release(oid(4)), .contains(oid(5)),
        .delete([oid(6)]), .list, .evict(bytes: 123), .subscribe, .stats,
    ]

    @Test func requestsRoundTrip() throws {
        for (i, r) in Self.requests.enumerated() {
            let frame = Wire.encode(r, requestId: UInt64(i + 100))
            #expect(try Frame.complete(frame) == frame.count)
            let (rid, back) = try Wire.decodeRequest(frame)
            #expect(rid == UInt64(i + 100) && back == r)
        }
    }

    @Test func repliesRoundTrip() throws {
        let loc = ObjectLocation(offset: 4096, dataSize: 10, metadataSize: 2, reserved: 128)
        let replies: [StoreResponse] = [
            .created(loc), .sealed, .aborted, .objects([loc, nil]), .released, .contains(true),
            .list([ObjectInfo(id: oid(1), location: loc, state: .sealed, refCount: 2, createdNanos: 5, constructNanos: 9, digest: 3)]),
            .evicted(bytes: 256), .subscribed,
        ]
        for r in replies {
            #expect(try Wire.decodeIncoming(Wire.encode(r, requestId: 9)) == .reply(requestId: 9, .success(r)))
        }
        guard case .reply(9, .failure(let e)) = try Wire.decodeIncoming(Wire.encode(.error(.notFound(oid(1))), requestId: 9)) else {
            Issue.record("error reply"); return
        }
        #expect(e.storeCode == .notFound && e.message.contains("does not exist"))
        guard case .reply(_, .success(.deleted(let es))) = try Wire.decodeIncoming(Wire.encode(.deleted([nil, .inUse(oid(2), references: 1)]), requestId: 1)) else {
            Issue.record("deleted"); return
        }
        #expect(es.count == 2 && es[0] == nil && es[1]?.description.contains("in use") == true)
        #expect(try Wire.decodeIncoming(Wire.encode(.sealed(oid(3), loc))) == .notification(.sealed(oid(3), loc)))
        let hello = Hello(regionSize: 1 << 20, lineSize: 128, clientId: 4)
        #expect(try Wire.decodeHello(Wire.encode(hello)) == hello)
    }

    /// The small replies written in place are the bytes the general
    /// writer lays out, field by field (SPEC §9.2), and decode back.
    @Test func smallFramesAreTheGeneralWritersBytes() throws {
        for rid: UInt64 in [0, 1, 0x0102_0304_0506_0708, .max] {
            for (kind, byte) in [(Frame.Kind.containsReply, UInt8?.some(1)), (.containsReply, 0), (.sealed, nil), (.released, nil),
                                 (.aborted, nil), (.subscribed, nil)] {
                var w = WireWriter()
                w.u32(UInt32(16 + (byte == nil ? 0 : 1))); w.u16(kind.rawValue); w.u16(0); w.u64(rid)
                if let byte { w.u8(byte) }
                #expect(Frame.small(kind, requestId: rid, byte: byte) == w.bytes, "\(kind) \(rid)")
                #expect(Frame.build(kind, requestId: rid) { if let byte { $0.u8(byte) } } == w.bytes, "\(kind) \(rid)")
                var slot = [UInt8](repeating: 0xEE, count: Frame.smallLength(byte: byte))
                slot.withUnsafeMutableBytes { Frame.writeSmall(kind, requestId: rid, byte: byte, into: $0) }
                #expect(slot == w.bytes, "written in place: \(kind) \(rid)")
            }
            for r: StoreResponse in [.contains(true), .contains(false), .sealed, .released, .aborted, .subscribed] {
                let (kind, byte) = try #require(Wire.small(r))
                #expect(Frame.small(kind, requestId: rid, byte: byte) == Wire.encode(r, requestId: rid), "\(r)")
            }
            #expect(Wire.small(.evicted(bytes: 0)) == nil)
            let id = ObjectID(bytes: (1...20).map { UInt8($0) })!
            for r: StoreRequest in [.contains(id), .release(id), .abort(id)] {
                let (kind, same) = try #require(Wire.oneID(r))
                #expect(same == id)
                var slot = [UInt8](repeating: 0xEE, count: Frame.oneIDLength)
                slot.withUnsafeMutableBytes { Frame.writeOneID(kind, requestId: rid, id: id, into: $0) }
                #expect(slot == Wire.encode(r, requestId: rid), "written in place: \(r) \(rid)")
            }
            #expect(Wire.oneID(.seal(id, digest: 1)) == nil)
            #expect(try Wire.decodeIncoming(Wire.encode(.contains(true), requestId: rid)) == .reply(requestId: rid, .success(.contains(true))))
        }
    }

    @Test func everyTruncationIsAnErrorNotACrash() {
        for r in Self.requests {
            let frame = Wire.encode(r, requestId: 1)
            for cut in 0..<frame.count {
                var short = Array(frame[..<cut])
                if short.count >= 4 { // keep the length field consistent with what is there
                    let n = UInt32(short.count).littleEndian
                    withUnsafeBytes(of: n) { for i in 0..<4 { short[i] = $0[i] } }
                }
                if cut < Frame.headerBytes {
                    #expect(throws: WireError.self) { try Wire.decodeRequest(short) }
                } else if cut < frame.count {
                    #expect(throws: WireError.self, "cut at \(cut) of \(r)") { try Wire.decodeRequest(short) }
                }
            }
        }
    }

    @Test func impossibleLengthsUnknownTypesAndTrailingBytes() throws {
        var frame = Wire.encode(.list, requestId: 1)
        frame[0] = 3; frame[1] = 0; frame[2] = 0; frame[3] = 0
        #expect(throws: WireError.badLength(3)) { try Frame.complete(frame) }
        let huge: [UInt8] = [0, 0, 0, 0x40] + [UInt8](repeating: 0, count: 12)
        #expect(throws: WireError.badLength(0x4000_0000)) { try Frame.complete(huge) }
        #expect(try Frame.complete([16, 0, 0, 0, 1]) == nil, "needs more bytes")
        var unknown = Wire.encode(.list, requestId: 1)
        unknown[4] = 0x7E
        #expect(throws: WireError.unknownType(0x7E)) { try Wire.decodeRequest(unknown) }
        var trailing = Wire.encode(.list, requestId: 1) + [1, 2]
        trailing[0] = UInt8(trailing.count)
        #expect(throws: WireError.trailingBytes(2)) { try Wire.decodeRequest(trailing) }
        // A get claiming a billion ids is refused before any allocation.
        let bomb = Frame.build(.get, requestId: 1) { $0.i64(0); $0.u32(1_000_000_000) }
        #expect(throws: WireError.badValue("1000000000 ids, at most 4096")) { try Wire.decodeRequest(bomb) }
        let liar = Frame.build(.get, requestId: 1) { $0.i64(0); $0.u32(3); $0.id(oid(1)) }
        #expect(throws: WireError.truncated(needed: 60, available: 20)) { try Wire.decodeRequest(liar) }
    }

    @Test func randomBytesNeverCrashTheDecoder() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            var bytes = (0..<Int.random(in: 0...80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if bytes.count >= 6, Bool.random(using: &rng) {
                let n = UInt32(bytes.count).littleEndian
                withUnsafeBytes(of: n) { for i in 0..<4 { bytes[i] = $0[i] } }
                bytes[5] = 0; bytes[4] = UInt8.random(in: 1...12, using: &rng)
            }
            _ = try? Wire.decodeRequest(bytes)
            _ = try? Wire.decodeIncoming(bytes)
        }
    }
}

@Suite struct InlineWireTests {
    @Test func createAndSealAndRefreshRoundTrip() throws {
        let objects = [Wire.InlineObject(id: oid(1), data: [1, 2, 3], metadata: [9]), Wire.InlineObject(id: oid(2), data: [], metadata: [7, 7])]
        let (rid, decoded) = try Wire.decode(Wire.encodeCreateAndSeal(objects, requestId: 5))
        #expect(rid == 5 && decoded == .createAndSeal(objects))
        #expect(throws: WireError.self) { try Wire.decodeRequest(Wire.encodeCreateAndSeal(objects, requestId: 5)) }
        #expect(try Wire.decodeRequest(Wire.encode(.refresh([oid(3)]), requestId: 6)).request == .refresh([oid(3)]))
        let reply = Wire.encode(.createdAndSealed([nil, .alreadyExists(oid(2))]), requestId: 5)
        guard case .reply(5, .success(.createdAndSealed(let es))) = try Wire.decodeIncoming(reply) else { Issue.record("reply"); return }
        #expect(es.count == 2 && es[0] == nil && es[1]?.description.contains("already exists") == true)
    }

    @Test func aLyingBlobLengthIsCaught() {
        let frame = Frame.build(.createAndSeal, requestId: 1) { w in w.u32(1); w.id(oid(1)); w.u32(1_000_000); w.bytes([1, 2]) }
        #expect(throws: WireError.truncated(needed: 1_000_000, available: 2)) { try Wire.decode(frame) }
        let empty = Frame.build(.createAndSeal, requestId: 1) { $0.u32(0) }
        #expect(throws: WireError.self) { try Wire.decode(empty) }
    }

    /// Found by `plenum fuzz`: a stats reply whose used − capacity overflows
    /// trapped the client's decoder.
    @Test func aHostileStatsReplyIsAnErrorNotATrap() {
        let frame = Frame.build(.statsReply, requestId: 1) { w in
            w.int(Int.min); w.int(Int.max)
            for _ in 0..<7 { w.int(0) }
            w.u64(0)
        }
        #expect(throws: WireError.self) { try Wire.decodeIncoming(frame) }
        let used = Frame.build(.statsReply, requestId: 1) { w in
            w.int(10); w.int(11)
            for _ in 0..<7 { w.int(0) }
            w.u64(0)
        }
        #expect(throws: WireError.self) { try Wire.decodeIncoming(used) }
    }
}

/// SPEC §9.2 0x17: the hop trace request and its reply.
@Suite struct HopTraceWireTests {
    @Test func theRequestAndItsReplyRoundTripAndRefuseWhatIsMalformed() throws {
        for on in [true, false] {
            let (rid, request) = try Wire.decode(Wire.encodeHopTrace(on: on, requestId: 9))
            #expect(rid == 9 && request == .hopTrace(on: on))
        }
        var bad = Wire.encodeHopTrace(on: true, requestId: 9)
        bad[16] = 2
        #expect(throws: WireError.self) { try Wire.decode(bad) }
        let events = HopEvent.What.allCases.enumerated().map { i, w in
            HopEvent(nanos: UInt64(1_000 + i), what: w, kind: UInt16(0x14 + i), key: UInt64(i) << 40, client: UInt64(i), peer: UInt32(i))
        }
        let frame = Wire.encodeHopTraceReply(events[...], dropped: 3, requestId: 5)
        #expect(frame.count == Frame.headerBytes + 8 + events.count * HopEvent.bytes)
        guard case .hopTrace(5, let got, 3) = try Wire.decodeIncoming(frame) else { Issue.record("not a hop trace reply"); return }
        #expect(got == events)
        // An unknown `what`, a count beyond the body, truncation: errors.
        var unknown = frame
        unknown[Frame.headerBytes + 8 + 30] = 9
        #expect(throws: WireError.self) { try Wire.decodeIncoming(unknown) }
        var lying = frame
        lying[Frame.headerBytes] = 200
        #expect(throws: WireError.self) { try Wire.decodeIncoming(lying) }
        #expect(throws: WireError.self) { try Wire.decodeIncoming(Array(frame.dropLast())) }
    }
}
