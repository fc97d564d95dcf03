import PlenumPlasma
import PlenumStore
import Testing

/// The Plasma codec (SPEC §11) against bytes captured from Plasma 11 itself
/// (libplasma's client and plasma-store-server from the pyarrow 11.0.0
/// wheel, relayed through a logging proxy), round trips, and hostile input.
@Suite struct PlasmaCodecTests {
    static func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    let a = ObjectID(bytes: [UInt8](repeating: 0x61, count: 20))!
    let b = ObjectID(bytes: [UInt8](repeating: 0x62, count: 20))!
    let z = ObjectID(bytes: [UInt8](repeating: 0x7A, count: 20))!

    /// Get replies of 0 … 7 ids keep the exact bytes of the writer they
    /// were first checked against Plasma's client with (FNV-1a of each
    /// frame, taken before the writer's vectors were written in bulk): a
    /// faster writer must not move a byte.
    @Test func getRepliesKeepTheirBytes() {
        func fnv(_ b: [UInt8]) -> UInt64 {
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            for x in b { h = (h ^ UInt64(x)) &* 0x100_0000_01b3 }
            return h
        }
        var prints: [UInt64] = []
        for n in 0...7 {
            let ids = (0..<n).map { (k: Int) -> ObjectID in
                let bytes: [UInt8] = (0..<20).map { (j: Int) -> UInt8 in UInt8(truncatingIfNeeded: 31 &* j &+ 7 &* k) }
                return ObjectID(bytes: bytes)!
            }
            let specs = (0..<n).map { (k: Int) -> PlasmaObjectSpec in
                k % 3 == 2 ? PlasmaObjectSpec.missing
                           : PlasmaObjectSpec(segmentIndex: Int32(k + 1), dataOffset: UInt64(4096 * k), dataSize: Int64(100 + k),
                                              metadataOffset: UInt64(4096 * k + 100 + k), metadataSize: Int64(k), deviceNum: 0)
            }
            let fds: [Int32] = Array([Int32(1), 5, 9].prefix(n % 4))
            let sizes: [Int64] = fds.map { (f: Int32) -> Int64 in Int64(f) << 20 | 8 }
            prints.append(fnv(PlasmaCodec.encodeGeneric(.get(ids, specs, storeFDs: fds, mmapSizes: sizes))))
        }
        #expect(prints == Self.getReplyPrints)
    }
    static let getReplyPrints: [UInt64] = [0xd330_2367_b539_937b, 0x7dbb_fac2_4eac_96b6, 0x1552_ce95_8417_e30c, 0x4aaf_858b_ac23_244f,
                                           0x5591_3c4e_6b30_60da, 0xf058_b1b3_145a_2676, 0x6c97_d94f_4536_5c1d, 0x3631_da77_5afb_6d5c]

    /// The hot replies come from templates (issue 25): byte for byte what
    /// the generic writer builds, for ids, codes, specs, descriptors and
    /// sizes all over their ranges; other shapes take the generic path.
    @Test func templatedRepliesAreTheGenericBytes() throws {
        var rng = SystemRandomNumberGenerator()
        func id() -> ObjectID { ObjectID(bytes: (0..<20).map { _ in UInt8.random(in: 0...255, using: &rng) })! }
        func spec() -> PlasmaObjectSpec {
            PlasmaObjectSpec(segmentIndex: .random(in: .min ... .max), dataOffset: .random(in: 0 ... .max), dataSize: .random(in: -1 ... .max),
                             metadataOffset: .random(in: 0 ... .max), metadataSize: .random(in: 0 ... .max), deviceNum: .random(in: .min ... .max))
        }
        let errors: [PlasmaError] = [.ok, .objectExists, .objectNonexistent, .outOfMemory, .objectNotSealed, .objectInUse]
        for _ in 0..<200 {
            let e = errors.randomElement()!
            let replies: [PlasmaReply] = [
                .contains(id(), Bool.random()), .seal(id(), e),
                .create(id(), spec(), e, storeFD: .random(in: .min ... .max), mmapSize: .random(in: .min ... .max)),
                .get([id()], [spec()], storeFDs: [], mmapSizes: []),
                .get([id()], [.missing], storeFDs: [], mmapSizes: []),
                .get([id()], [spec()], storeFDs: [.random(in: .min ... .max)], mmapSizes: [.random(in: .min ... .max)]),
                .delete([id()], [e]),
                .get([id(), id()], [spec(), spec()], storeFDs: [3], mmapSizes: [4]), .delete([id(), id()], [e, e]),
            ]
            for r in replies {
                let fast = PlasmaCodec.encode(r)
                #expect(fast == PlasmaCodec.encodeGeneric(r), "\(r)")
                let h = try #require(try PlasmaCodec.header(fast, from: 0))
                #expect(try PlasmaCodec.decodeReply(type: h.type, body: Array(fast[24...])) == r)
            }
        }
    }

    @Test func decodesRequestsAsLibplasmaSendsThem() throws {
        // client.create(a, 100, b"meta")
        let create = Self.hex("14000000000000000c002000080007000c0014000c0000000000000118000000640000000000000004000000000000000000000014000000616161616161616161616161616161616161616100000000")
        #expect(try PlasmaCodec.decodeRequest(type: 1, body: create) == .create(a, evictIfFull: true, dataSize: 100, metadataSize: 4, deviceNum: 0))
        // client.seal(a), with the client's XXH64 digest (ignored by this store)
        let seal = Self.hex("0c00000008000c000400080008000000080000002000000014000000616161616161616161616161616161616161616100000000080000000d3adf03df0a5eff00000000")
        #expect(try PlasmaCodec.decodeRequest(type: 7, body: seal) == .seal(a))
        // client.get_buffers([a, z], timeout_ms=0)
        let get = Self.hex("0c00000000000600080004000600000004000000020000002400000004000000140000007a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a0000000014000000616161616161616161616161616161616161616100000000")
        #expect(try PlasmaCodec.decodeRequest(type: 9, body: get) == .get([a, z], timeoutMs: 0))
        #expect(try PlasmaCodec.decodeRequest(type: 19, body: Self.hex("080000000400040004000000")) == .connect)
    }

    @Test func decodesRepliesAsPlasmasStoreSendsThem() throws {
        let get = Self.hex("180000000000000000000e001800040008000c00100014000e0000001400000054000000b8000000bc000000c8000000020000002400000004000000140000007a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a000000001400000061616161616161616161616161616161616161610000000002000000040000000000000040000000000000006400000000000000a4000000000000000400000000000000000000000000000000000000000000000000000000000000ffffffffffffffff000000000000000000000000000000000000000000000000000000000100000004000000010000000800f605000000000000000000000000")
        let found = PlasmaObjectSpec(segmentIndex: 4, dataOffset: 64, dataSize: 100, metadataOffset: 164, metadataSize: 4)
        #expect(try PlasmaCodec.decodeReply(type: 10, body: get) == .get([a, z], [found, .missing], storeFDs: [4], mmapSizes: [100_007_944]))
        let delete = Self.hex("1000000000000a001000040008000c000a0000000100000008000000280000000100000004000000140000006262626262626262626262626262626262626262000000000100000000000000")
        #expect(try PlasmaCodec.decodeReply(type: 14, body: delete) == .delete([b], [.ok]))
        let list = Self.hex("0c00000000000600080004000600000004000000020000007c0000001800000000001200240004000c00140000001c0000000800120000002000000038000000640000000000000004000000000000000f7a046b0000000014000000616161616161616161616161616161616161616100000000080000000d3adf03df0a5eff00001200280004000c00140000001c000000080012000000240000003c000000050000000000000001000000000000000f7a046b0000000000000000140000006262626262626262626262626262626262626262000000000800000025d6f26e4149176e00000000")
        guard case .list(let rows)? = try PlasmaCodec.decodeReply(type: 18, body: list) else { Issue.record("list"); return }
        #expect(rows.map(\.id) == [b, a])   // the store's hash order
        #expect(rows.map(\.dataSize) == [5, 100])
        #expect(rows.map(\.metadataSize) == [1, 4])
        #expect(rows.allSatisfy { $0.createTime == 0x6B04_7A0F && $0.constructDuration == 0 && $0.digest.count == 8 && !$0.isDeletion })
    }

    @Test func everyMessageRoundTrips() throws {
        let spec = PlasmaObjectSpec(segmentIndex: 1, dataOffset: 4096, dataSize: 0, metadataOffset: 4096, metadataSize: 0)
        let requests: [PlasmaRequest] = [
            .connect, .create(a, evictIfFull: false, dataSize: 1 << 40, metadataSize: 3, deviceNum: 0),
            .createAndSeal([PlasmaInlineObject(id: a, data: Array(repeating: 7, count: 300), metadata: [1])], batch: false),
            .createAndSeal([PlasmaInlineObject(id: a, data: [], metadata: []), PlasmaInlineObject(id: b, data: [9], metadata: [8, 7])], batch: true),
            .abort(a), .seal(b), .get([a, b, z], timeoutMs: -1), .release(z), .delete([a, b]), .contains(a), .list, .evict(bytes: .max),
            .subscribe, .setOptions(clientName: Array("x".utf8), outputMemoryQuota: -1), .debugString, .refreshLRU([b]), .disconnect,
        ]
        for q in requests {
            let f = PlasmaCodec.encode(q)
            let h = try #require(try PlasmaCodec.header(f, from: 0))
            #expect(h.length == f.count - PlasmaCodec.headerBytes)
            #expect(try PlasmaCodec.decodeRequest(type: h.type, body: Array(f[24...])) == q)
        }
        let info = PlasmaObjectInfo(id: z, dataSize: -1, metadataSize: -1, refCount: 3, createTime: 1_700_000_000, constructDuration: -1,
                                    digest: [], isDeletion: true)
        let replies: [PlasmaReply] = [
            .connect(memoryCapacity: 10_000), .create(a, spec, .ok, storeFD: 1, mmapSize: 1 << 30), .create(b, .missing, .objectExists, storeFD: -1, mmapSize: 0),
            .createAndSeal(.outOfMemory, batch: true), .abort(a), .seal(a, .ok), .get([], [], storeFDs: [], mmapSizes: []),
            .get([a, b], [spec, .missing], storeFDs: [1, 3], mmapSizes: [8, 9]), .delete([a, z], [.objectInUse, .objectNonexistent]),
            .contains(z, false), .list([info, info]), .evict(bytes: 998), .setOptions(.ok), .debugString(Array("text".utf8)), .refreshLRU,
        ]
        for r in replies {
            let f = PlasmaCodec.encode(r)
            let h = try #require(try PlasmaCodec.header(f, from: 0))
            #expect(try PlasmaCodec.decodeReply(type: h.type, body: Array(f[24...])) == r)
        }
        let n = PlasmaCodec.notification([info])
        #expect(try PlasmaCodec.decodeNotification(Array(n[8...])) == [info])
    }

    /// The get reply's writers for ids and empty tables lay out the very
    /// bytes of the generic `.strings` and `.tables`, at every alignment.
    @Test func theGetReplysFastWritersWriteTheGenericBytes() {
        for n in [0, 1, 2, 7, 100] {
            let ids = (0..<n).map { _ in ObjectID(bytes: (0..<20).map { _ in UInt8.random(in: 0...255) })! }
            for lead in [[], [FlatBufferWriter.Value.int32s([1, 2, 3])], [.string([1])]] {
                let fast = FlatBufferWriter.build(lead + [.ids(ids), .i64(5), .emptyTables(n)])
                let generic = FlatBufferWriter.build(lead + [.strings(ids.map(\.bytes)), .i64(5), .tables(ids.map { _ in [] })])
                #expect(fast == generic, "\(n) ids after \(lead.count) leading fields")
            }
        }
    }

    /// Structs of 8-byte fields must sit at 8-byte aligned offsets in the
    /// body (the client reads them in place).
    @Test func structsAndWideFieldsAreAligned() throws {
        let spec = PlasmaObjectSpec(segmentIndex: 1, dataOffset: 64, dataSize: 5, metadataOffset: 69, metadataSize: 0)
        let f = PlasmaCodec.encode(.get([a, b, z], [spec, spec, spec], storeFDs: [1], mmapSizes: [77]))
        let body = Array(f[24...])
        // The spec vector: find its length word (3) followed by the first spec.
        let first = spec.bytes
        let at = try #require((0...(body.count - first.count)).first { Array(body[$0..<($0 + first.count)]) == first })
        #expect(at % 8 == 0)
    }

    @Test func hostileInputThrowsAndNeverTraps() {
        // Every truncation of every valid body, and a body pointing outside itself.
        let frames = [PlasmaCodec.encode(.get([a, b], timeoutMs: 5)), PlasmaCodec.encode(.create(a, evictIfFull: true, dataSize: 1, metadataSize: 1, deviceNum: 0)),
                      PlasmaCodec.encode(.list([PlasmaObjectInfo(id: a, dataSize: 1, metadataSize: 2)]))]
        for f in frames {
            let body = Array(f[24...])
            let type = Int64(f[8])
            for n in 0..<body.count {
                _ = try? PlasmaCodec.decodeRequest(type: type, body: Array(body[0..<n]))
                _ = try? PlasmaCodec.decodeReply(type: type, body: Array(body[0..<n]))
            }
        }
        #expect(throws: PlasmaDecodeError.self) { try PlasmaCodec.decodeRequest(type: 19, body: [0xFF, 0xFF, 0xFF, 0x7F]) }
        #expect(throws: PlasmaDecodeError.self) { try PlasmaCodec.decodeRequest(type: 19, body: []) }
        // A vector claiming 2^30 strings in a 40-byte body.
        var get = Array(PlasmaCodec.encode(.get([a], timeoutMs: 0))[24...])
        let count = try! #require((0..<(get.count - 4)).first { get[$0..<($0 + 4)] == [1, 0, 0, 0] })
        get[count + 3] = 0x40
        #expect(throws: PlasmaDecodeError.self) { try PlasmaCodec.decodeRequest(type: 9, body: get) }
        // Ids must be 20 bytes.
        let short = FlatBufferWriter.build([.string([1, 2, 3])])
        #expect(throws: PlasmaDecodeError.badValue("object ids are 20 bytes, got 3")) { try PlasmaCodec.decodeRequest(type: 15, body: short) }
        #expect(throws: PlasmaDecodeError.badValue("unknown message type 99")) { try PlasmaCodec.decodeRequest(type: 99, body: short) }
        // Headers: a wrong version, a negative or oversized length.
        var h = PlasmaCodec.frame(.connectRequest, [])
        h[0] = 1
        #expect(throws: PlasmaDecodeError.self) { try PlasmaCodec.header(h, from: 0) }
        for length: Int64 in [-1, Int64(PlasmaCodec.maxBodyBytes) + 1] {
            var f = PlasmaCodec.frame(.connectRequest, [])
            for i in 0..<8 { f[16 + i] = UInt8(truncatingIfNeeded: UInt64(bitPattern: length) >> (8 * i)) }
            #expect(throws: PlasmaDecodeError.self) { try PlasmaCodec.header(f, from: 0) }
        }
        #expect(try! PlasmaCodec.header(Array(h[0..<23]), from: 0) == nil)
    }
}
