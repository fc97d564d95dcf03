import PlenumStore

/// Plasma's framing and message bodies (SPEC §11.1–11.3).
///
/// ```
///   frame:  [i64 version = 0][i64 type][i64 length][length bytes: FlatBuffer]     (little-endian)
///   a descriptor travels alone after its frame: 1 byte (value 0) carrying SCM_RIGHTS
/// ```
public enum PlasmaCodec {
    public static let headerBytes = 24
    public static let version: Int64 = 0
    /// The largest body this store accepts: a create-and-seal carries its
    /// bytes inline, so this bounds what one client can make the store buffer.
    public static let maxBodyBytes = 64 << 20

    /// A whole frame's header at `from`, or nil if more bytes are needed.
    public static func header(_ input: [UInt8], from: Int) throws(PlasmaDecodeError) -> (type: Int64, length: Int)? {
        guard input.count - from >= headerBytes else { return nil }
        func word(_ k: Int) -> Int64 { Int64(bitPattern: (0..<8).reduce(UInt64(0)) { $0 | UInt64(input[from + 8 * k + $1]) << (8 * $1) }) }
        guard word(0) == version else { throw .badValue("protocol version \(word(0)); Plasma 11 speaks version 0") }
        let length = word(2)
        guard length >= 0, length <= Int64(maxBodyBytes) else {
            throw .badValue("body of \(length) bytes; at most \(maxBodyBytes) (create large objects with create + seal, not create_and_seal)")
        }
        return (word(1), Int(length))
    }

    public static func frame(_ type: PlasmaType, _ body: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(headerBytes + body.count)
        out.appendLittleEndian(version)
        out.appendLittleEndian(type.rawValue)
        out.appendLittleEndian(Int64(body.count))
        out += body
        return out
    }

    static func id(_ b: [UInt8]?) throws(PlasmaDecodeError) -> ObjectID {
        guard let b, let id = ObjectID(bytes: b) else { throw .badValue("object ids are 20 bytes, got \(b?.count ?? 0)") }
        return id
    }

    /// A request's id field (present, 20 bytes).
    static func reqID(_ r: FlatBufferReader, _ t: FlatBufferReader.Table, _ i: Int) throws(PlasmaDecodeError) -> ObjectID {
        guard let id = try r.id(t, i) else { throw .badValue("object ids are 20 bytes, got 0") }
        return id
    }

    static func ids(_ list: [[UInt8]]) throws(PlasmaDecodeError) -> [ObjectID] {
        var out: [ObjectID] = []
        out.reserveCapacity(list.count)
        for b in list { out.append(try id(b)) }
        return out
    }

    // MARK: requests

    public static func decodeRequest(type raw: Int64, body: [UInt8]) throws(PlasmaDecodeError) -> PlasmaRequest {
        guard let type = PlasmaType(rawValue: raw) else { throw .badValue("unknown message type \(raw)") }
        if type == .disconnectClient { return .disconnect }
        let r = FlatBufferReader(body)
        let t = try r.root()
        switch type {
        case .connectRequest: return .connect
        case .createRequest:
            return .create(try reqID(r, t, 0), evictIfFull: try r.bool(t, 1), dataSize: try r.i64(t, 2),
                           metadataSize: try r.i64(t, 3), deviceNum: try r.i32(t, 4))
        case .createAndSealRequest:
            let o = PlasmaInlineObject(id: try id(try r.string(t, 0)), data: try r.string(t, 2) ?? [], metadata: try r.string(t, 3) ?? [])
            return .createAndSeal([o], batch: false)
        case .createAndSealBatchRequest:
            let ids = try ids(try r.strings(t, 0)), data = try r.strings(t, 2), metadata = try r.strings(t, 3)
            guard data.count == ids.count, metadata.count == ids.count else {
                throw .badValue("create_and_seal batch of \(ids.count) ids with \(data.count) data and \(metadata.count) metadata strings")
            }
            return .createAndSeal((0..<ids.count).map { PlasmaInlineObject(id: ids[$0], data: data[$0], metadata: metadata[$0]) }, batch: true)
        case .abortRequest: return .abort(try reqID(r, t, 0))
        case .sealRequest: return .seal(try reqID(r, t, 0))
        case .getRequest: return .get(try r.ids(t, 0), timeoutMs: try r.i64(t, 1))
        case .releaseRequest: return .release(try reqID(r, t, 0))
        case .deleteRequest: return .delete(try r.ids(t, 1))
        case .containsRequest: return .contains(try reqID(r, t, 0))
        case .listRequest: return .list
        case .evictRequest: return .evict(bytes: try r.u64(t, 0))
        case .subscribeRequest: return .subscribe
        case .setOptionsRequest: return .setOptions(clientName: try r.string(t, 0) ?? [], outputMemoryQuota: try r.i64(t, 1))
        case .getDebugStringRequest: return .debugString
        case .refreshLRURequest: return .refreshLRU(try ids(try r.strings(t, 0)))
        default: return .unsupported(type)
        }
    }

    /// A request as a Plasma client sends it (tests and `plenum fuzz`).
    public static func encode(_ q: PlasmaRequest) -> [UInt8] {
        typealias V = FlatBufferWriter.Value
        func build(_ type: PlasmaType, _ fields: [V?]) -> [UInt8] { frame(type, FlatBufferWriter.build(fields)) }
        switch q {
        case .connect: return build(.connectRequest, [])
        case .create(let id, let evict, let d, let m, let dev):
            return build(.createRequest, [.string(id.bytes), .u8(evict ? 1 : 0), .i64(d), .i64(m), .i32(dev)])
        case .createAndSeal(let objects, let batch):
            if batch {
                return build(.createAndSealBatchRequest, [.strings(objects.map(\.id.bytes)), .u8(1), .strings(objects.map(\.data)),
                                                          .strings(objects.map(\.metadata)), .strings(objects.map { _ in [UInt8](repeating: 0, count: 8) })])
            }
            let o = objects.first ?? PlasmaInlineObject(id: ObjectID(bytes: [UInt8](repeating: 0, count: 20))!, data: [], metadata: [])
            return build(.createAndSealRequest, [.string(o.id.bytes), .u8(1), .string(o.data), .string(o.metadata), .string([UInt8](repeating: 0, count: 8))])
        case .abort(let id): return build(.abortRequest, [.string(id.bytes)])
        case .seal(let id): return build(.sealRequest, [.string(id.bytes), .string([UInt8](repeating: 0, count: 8))])
        case .get(let ids, let t): return build(.getRequest, [.strings(ids.map(\.bytes)), .i64(t)])
        case .release(let id): return build(.releaseRequest, [.string(id.bytes)])
        case .delete(let ids): return build(.deleteRequest, [.i32(Int32(ids.count)), .strings(ids.map(\.bytes))])
        case .contains(let id): return build(.containsRequest, [.string(id.bytes)])
        case .list: return build(.listRequest, [])
        case .evict(let n): return build(.evictRequest, [.u64(n)])
        case .subscribe: return build(.subscribeRequest, [])
        case .setOptions(let name, let quota): return build(.setOptionsRequest, [.string(name), .i64(quota)])
        case .debugString: return build(.getDebugStringRequest, [])
        case .refreshLRU(let ids): return build(.refreshLRURequest, [.strings(ids.map(\.bytes))])
        case .disconnect: return frame(.disconnectClient, [])
        case .unsupported(let type): return build(type, [])
        }
    }

    // MARK: replies

    public static func encode(_ reply: PlasmaReply) -> [UInt8] {
        ReplyTemplates.encode(reply) ?? encodeGeneric(reply)
    }

    /// The reply built field by field (every shape; `encode` uses
    /// `ReplyTemplates` for the hot ones, whose bytes are these).
    public static func encodeGeneric(_ reply: PlasmaReply) -> [UInt8] {
        typealias V = FlatBufferWriter.Value
        func build(_ type: PlasmaType, _ fields: [V?]) -> [UInt8] { frame(type, FlatBufferWriter.build(fields)) }
        switch reply {
        case .connect(let capacity): return build(.connectReply, [.i64(capacity)])
        case .create(let id, let spec, let error, let fd, let size):
            return build(.createReply, [.string(id.bytes), .inlineStruct(spec.bytes, align: 8), .i32(error.rawValue), .i32(fd), .i64(size), nil])
        case .createAndSeal(let error, let batch):
            return build(batch ? .createAndSealBatchReply : .createAndSealReply, [.i32(error.rawValue)])
        case .abort(let id): return build(.abortReply, [.string(id.bytes)])
        case .seal(let id, let error): return build(.sealReply, [.string(id.bytes), .i32(error.rawValue)])
        case .get(let ids, let specs, let fds, let sizes):
            let n = specs.count * PlasmaObjectSpec.size
            let specBytes = [UInt8](unsafeUninitializedCapacity: n) { b, initialized in
                let raw = UnsafeMutableRawBufferPointer(b)
                raw.initializeMemory(as: UInt8.self, repeating: 0)
                for (k, s) in specs.enumerated() { s.store(into: raw, at: k * PlasmaObjectSpec.size) }
                initialized = n
            }
            // Per object: an offset and a 28-byte string (id), a struct, a
            // descriptor, a size, an offset and an 8-byte empty table; plus
            // the root table and padding.
            let capacity = 128 + 48 * ids.count + PlasmaObjectSpec.size * specs.count + 4 * fds.count + 8 * sizes.count
            return frame(.getReply, FlatBufferWriter.build([.ids(ids), .structs(specBytes, size: PlasmaObjectSpec.size, align: 8),
                                                            .int32s(fds), .int64s(sizes), .emptyTables(ids.count)], capacity: capacity))
        case .delete(let ids, let errors):
            return build(.deleteReply, [.i32(Int32(ids.count)), .strings(ids.map(\.bytes)), .int32s(errors.map(\.rawValue))])
        case .contains(let id, let has): return build(.containsReply, [.string(id.bytes), .i32(has ? 1 : 0)])
        case .list(let infos): return build(.listReply, [.tables(infos.map(\.fields))])
        case .evict(let n): return build(.evictReply, [.u64(n)])
        case .setOptions(let error): return build(.setOptionsReply, [.i32(error.rawValue)])
        case .debugString(let s): return build(.getDebugStringReply, [.string(s)])
        case .refreshLRU: return build(.refreshLRUReply, [])
        }
    }

    /// A notification as written to a subscriber's socket (SPEC §11.5):
    /// an int64 length, then a `PlasmaNotification` FlatBuffer.
    public static func notification(_ infos: [PlasmaObjectInfo]) -> [UInt8] {
        let body = FlatBufferWriter.build([.tables(infos.map(\.fields))])
        var out: [UInt8] = []
        out.reserveCapacity(8 + body.count)
        out.appendLittleEndian(Int64(body.count))
        out += body
        return out
    }

    static func error(_ raw: Int32) throws(PlasmaDecodeError) -> PlasmaError {
        guard let e = PlasmaError(rawValue: raw) else { throw .badValue("unknown Plasma error \(raw)") }
        return e
    }

    static func info(_ r: FlatBufferReader, _ t: FlatBufferReader.Table) throws(PlasmaDecodeError) -> PlasmaObjectInfo {
        PlasmaObjectInfo(id: try id(try r.string(t, 0)), dataSize: try r.i64(t, 1), metadataSize: try r.i64(t, 2), refCount: try r.i32(t, 3),
                         createTime: try r.i64(t, 4), constructDuration: try r.i64(t, 5), digest: try r.string(t, 6) ?? [],
                         isDeletion: try r.bool(t, 7))
    }

    /// A notification body (after its length word).
    public static func decodeNotification(_ body: [UInt8]) throws(PlasmaDecodeError) -> [PlasmaObjectInfo] {
        let r = FlatBufferReader(body)
        var out: [PlasmaObjectInfo] = []
        for t in try r.tables(try r.root(), 0) { out.append(try info(r, t)) }
        return out
    }

    /// A reply as a Plasma client reads it (tests and `plenum fuzz`); nil
    /// for types that are not replies.
    public static func decodeReply(type raw: Int64, body: [UInt8]) throws(PlasmaDecodeError) -> PlasmaReply? {
        guard let type = PlasmaType(rawValue: raw) else { throw .badValue("unknown message type \(raw)") }
        let r = FlatBufferReader(body)
        let t = try r.root()
        switch type {
        case .connectReply: return .connect(memoryCapacity: try r.i64(t, 0))
        case .createReply:
            guard let s = try r.inlineStruct(t, 1, size: PlasmaObjectSpec.size) else { throw .badValue("create reply without its object") }
            return .create(try id(try r.string(t, 0)), PlasmaObjectSpec(bytes: s), try error(try r.i32(t, 2)), storeFD: try r.i32(t, 3), mmapSize: try r.i64(t, 4))
        case .createAndSealReply: return .createAndSeal(try error(try r.i32(t, 0)), batch: false)
        case .createAndSealBatchReply: return .createAndSeal(try error(try r.i32(t, 0)), batch: true)
        case .abortReply: return .abort(try id(try r.string(t, 0)))
        case .sealReply: return .seal(try id(try r.string(t, 0)), try error(try r.i32(t, 1)))
        case .getReply:
            let ids = try ids(try r.strings(t, 0))
            let specs = try r.structs(t, 1, size: PlasmaObjectSpec.size).map(PlasmaObjectSpec.init(bytes:))
            guard specs.count == ids.count else { throw .badValue("get reply with \(ids.count) ids and \(specs.count) objects") }
            let fds = try r.int32s(t, 2), sizes = try r.int64s(t, 3)
            guard fds.count == sizes.count else { throw .badValue("get reply with \(fds.count) descriptors and \(sizes.count) sizes") }
            return .get(ids, specs, storeFDs: fds, mmapSizes: sizes)
        case .deleteReply:
            let ids = try ids(try r.strings(t, 1))
            var errors: [PlasmaError] = []
            for e in try r.int32s(t, 2) { errors.append(try error(e)) }
            guard errors.count == ids.count else { throw .badValue("delete reply with \(ids.count) ids and \(errors.count) errors") }
            return .delete(ids, errors)
        case .containsReply: return .contains(try id(try r.string(t, 0)), try r.i32(t, 1) != 0)
        case .listReply:
            var infos: [PlasmaObjectInfo] = []
            for x in try r.tables(t, 0) { infos.append(try info(r, x)) }
            return .list(infos)
        case .evictReply: return .evict(bytes: try r.u64(t, 0))
        case .setOptionsReply: return .setOptions(try error(try r.i32(t, 0)))
        case .getDebugStringReply: return .debugString(try r.string(t, 0) ?? [])
        case .refreshLRUReply: return .refreshLRU
        default: return nil
        }
    }
}
