import PlenumStore

/// Replies, notifications and the greeting (SPEC §9.2): encoding by the
/// store, bounds-checked decoding by the client.
extension Wire {
    public static func code(_ e: StoreError) -> ErrorCode {
        switch e {
        case .alreadyExists: return .alreadyExists
        case .notFound: return .notFound
        case .notSealed: return .notSealed
        case .alreadySealed: return .alreadySealed
        case .inUse: return .inUse
        case .notCreator: return .notCreator
        case .noReference: return .noReference
        case .invalidSize: return .invalidSize
        case .tooLarge: return .tooLarge
        case .outOfMemory, .fragmented: return .outOfMemory
        case .unknownClient: return .unknownClient
        case .tooManyIds, .tooManyWaiting: return .tooManyIds
        case .nodeUnavailable: return .nodeUnavailable
        case .digestMismatch: return .digestMismatch
        case .remote(let c, _): return ErrorCode(rawValue: c) ?? .malformedFrame
        }
    }

    public static func location(_ w: inout WireWriter, _ l: ObjectLocation) {
        w.int(l.offset); w.int(l.dataSize); w.int(l.metadataSize); w.int(l.reserved); w.int(l.region)
    }
    public static func location(_ r: inout WireReader) throws(WireError) -> ObjectLocation {
        let l = ObjectLocation(offset: try r.size(), dataSize: try r.size(), metadataSize: try r.size(), reserved: try r.size(),
                               region: try r.size())
        guard l.dataSize <= Int.max - l.metadataSize, l.offset <= Int.max - l.dataSize - l.metadataSize else {
            throw .badValue("location overflows")
        }
        return l
    }

    /// A reply with no body or a one-byte body: its kind and byte
    /// (`Frame.small`); nil for any other.
    public static func small(_ response: StoreResponse) -> (kind: Frame.Kind, byte: UInt8?)? {
        switch response {
        case .sealed: return (.sealed, nil)
        case .aborted: return (.aborted, nil)
        case .released: return (.released, nil)
        case .contains(let b): return (.containsReply, b ? 1 : 0)
        case .subscribed: return (.subscribed, nil)
        default: return nil
        }
    }

    public static func encode(_ response: StoreResponse, requestId: UInt64) -> [UInt8] {
        switch response {
        case .sealed, .aborted, .released, .contains, .subscribed:
            let (kind, byte) = small(response)!
            return Frame.small(kind, requestId: requestId, byte: byte)
        case .created(let l): return Frame.build(.created, requestId: requestId) { location(&$0, l) }
        case .objects(let ls): return Frame.build(.objects, requestId: requestId) { w in
            w.u32(UInt32(ls.count))
            // present u8, then five i64 (§9.2 `location`), written in place.
            let size = ls.reduce(0) { $0 + ($1 == nil ? 1 : 41) }
            w.raw(size) { b in
                var at = 0
                for l in ls {
                    guard let l else { at += 1; continue }   // present 0: the byte is already zero
                    b.storeBytes(of: 1, toByteOffset: at, as: UInt8.self)
                    b.storeBytes(of: Int64(l.offset).littleEndian, toByteOffset: at + 1, as: Int64.self)
                    b.storeBytes(of: Int64(l.dataSize).littleEndian, toByteOffset: at + 9, as: Int64.self)
                    b.storeBytes(of: Int64(l.metadataSize).littleEndian, toByteOffset: at + 17, as: Int64.self)
                    b.storeBytes(of: Int64(l.reserved).littleEndian, toByteOffset: at + 25, as: Int64.self)
                    b.storeBytes(of: Int64(l.region).littleEndian, toByteOffset: at + 33, as: Int64.self)
                    at += 41
                }
            }
        }
        case .deleted(let es): return Frame.build(.deleted, requestId: requestId) { perObject(&$0, es) }
        case .list(let rows): return Frame.build(.listReply, requestId: requestId) { w in
            w.u32(UInt32(rows.count))
            for o in rows {
                w.id(o.id); location(&w, o.location); w.u8(o.state == .sealed ? 1 : 0); w.int(o.refCount)
                w.u64(o.createdNanos); w.u64(o.constructNanos ?? .max); w.u64(o.digest ?? 0)
            }
        }
        case .evicted(let b): return Frame.build(.evicted, requestId: requestId) { $0.int(b) }
        case .stats(let s): return Frame.build(.statsReply, requestId: requestId) { w in
            for v in [s.capacity, s.used, s.objects, s.sealed, s.clients, s.evictions, s.evictedBytes,
                      s.allocator.freeBlocks, s.allocator.largestFree] { w.int(v) }
            w.u64(s.allocator.fragmentation.bitPattern)
        }
        case .error(let e): return error(code(e), e.description, requestId: requestId)
        case .refreshed: return Frame.build(.refreshed, requestId: requestId)
        case .createdAndSealed(let es): return Frame.build(.createdAndSealed, requestId: requestId) { perObject(&$0, es) }
        case .barrierPassed(let n): return Frame.build(.barrierPassed, requestId: requestId) { $0.int(n) }
        }
    }

    public static func error(_ c: ErrorCode, _ message: String, requestId: UInt64) -> [UInt8] {
        Frame.build(.error, requestId: requestId) { $0.u16(c.rawValue); $0.text(message) }
    }

    /// What a client reads back: a reply, or a notification (requestId 0).
    public enum Incoming: Equatable, Sendable {
        case reply(requestId: UInt64, Result<StoreResponse, RemoteError>)
        case notification(StoreNotification)
        case ringsOpened(requestId: UInt64, RingPair)
        case regions(requestId: UInt64, [RegionInfo])
        case clusterStatus(requestId: UInt64, String)
        case writeGranted(requestId: UInt64)
        case verified(requestId: UInt64, [StoreError?])
        case hopTrace(requestId: UInt64, events: [HopEvent], dropped: Int)
        case metrics(requestId: UInt64, String)
        /// The store posted to the reply ring of a client that said it
        /// sleeps (SPEC §9.6 "The client's sleeping word").
        case wake
    }

    public static func decodeIncoming(_ frame: [UInt8]) throws(WireError) -> Incoming {
        var (kind, rid, r) = try Frame.open(frame)
        guard let k = Frame.Kind(rawValue: kind) else { throw .unknownType(kind) }
        let response: StoreResponse
        switch k {
        case .created: response = .created(try location(&r))
        case .sealed: response = .sealed
        case .aborted: response = .aborted
        case .objects:
            let n = Int(try r.u32())
            guard n <= Frame.maxIds else { throw .badValue("\(n) objects") }
            var ls: [ObjectLocation?] = []
            for _ in 0..<n { ls.append(try r.u8() == 1 ? try location(&r) : nil) }
            response = .objects(ls)
        case .released: response = .released
        case .containsReply: response = .contains(try r.u8() == 1)
        case .deleted: response = .deleted(try perObject(&r))
        case .listReply:
            let n = Int(try r.u32())
            var rows: [ObjectInfo] = []
            for _ in 0..<n {
                let id = try r.id(), l = try location(&r), sealed = try r.u8() == 1, refs = try r.int()
                let created = try r.u64(), construct = try r.u64(), digest = try r.u64()
                rows.append(ObjectInfo(id: id, location: l, state: sealed ? .sealed : .created, refCount: refs,
                                       createdNanos: created, constructNanos: construct == .max ? nil : construct,
                                       digest: sealed ? digest : nil))
            }
            response = .list(rows)
        case .evicted: response = .evicted(bytes: try r.size())
        case .subscribed: response = .subscribed
        case .refreshed: response = .refreshed
        case .createdAndSealed: response = .createdAndSealed(try perObject(&r))
        case .barrierPassed: response = .barrierPassed(nodes: try r.size())
        case .regionsReply:
            let n = Int(try r.u32())
            guard n <= 1024 else { throw .badValue("\(n) regions") }
            var table: [RegionInfo] = []
            for _ in 0..<n {
                table.append(RegionInfo(handle: try r.size(), node: try r.u32(), size: try r.size(), lineSize: try r.size()))
            }
            guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
            return .regions(requestId: rid, table)
        case .writeGranted:
            guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
            return .writeGranted(requestId: rid)
        case .verified:
            let results = try perObject(&r)
            guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
            return .verified(requestId: rid, results)
        case .hopTraceReply:
            let (events, dropped) = try decodeHopTraceReply(&r)
            return .hopTrace(requestId: rid, events: events, dropped: dropped)
        case .metricsReply:
            return .metrics(requestId: rid, String(decoding: try r.blob(), as: UTF8.self))
        case .clusterStatusReply:
            let text = String(decoding: try r.blob(), as: UTF8.self)
            return .clusterStatus(requestId: rid, text)
        case .statsReply:
            var v: [Int] = []
            for _ in 0..<9 { v.append(try r.size()) }
            guard v[1] <= v[0] else { throw .badValue("stats: used \(v[1]) exceeds capacity \(v[0])") }
            let frag = Double(bitPattern: try r.u64())
            let a = AllocatorStats(capacity: v[0], used: v[1], free: v[0] - v[1], allocations: v[2], freeBlocks: v[7],
                                   largestFree: v[8], fragmentation: frag)
            response = .stats(StoreStats(capacity: v[0], used: v[1], objects: v[2], sealed: v[3], clients: v[4],
                                         evictions: v[5], evictedBytes: v[6], allocator: a))
        case .error:
            let c = try r.u16(), text = try r.text()
            return .reply(requestId: rid, .failure(RemoteError(code: c, message: text)))
        case .notifySealed:
            return .notification(.sealed(try r.id(), try location(&r)))
        case .notifyDeleted:
            return .notification(.deleted(try r.id()))
        case .ringsOpened:
            return .ringsOpened(requestId: rid, RingPair(requests: try r.size(), replies: try r.size(), length: try r.size(), doorbell: try r.size()))
        case .wake:
            guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
            return .wake
        default: throw .unknownType(kind)
        }
        return .reply(requestId: rid, .success(response))
    }

    public static func encode(_ n: StoreNotification) -> [UInt8] {
        switch n {
        case .sealed(let id, let l): return Frame.build(.notifySealed, requestId: 0) { $0.id(id); location(&$0, l) }
        case .deleted(let id): return Frame.build(.notifyDeleted, requestId: 0) { $0.id(id) }
        }
    }

    public static func encode(_ h: Hello) -> [UInt8] {
        Frame.build(.hello, requestId: 0) { $0.u32(h.version); $0.int(h.regionSize); $0.int(h.lineSize); $0.u64(h.clientId) }
    }

    public static func decodeHello(_ frame: [UInt8]) throws(WireError) -> Hello {
        var (kind, _, r) = try Frame.open(frame)
        guard kind == Frame.Kind.hello.rawValue else { throw .unknownType(kind) }
        let v = try r.u32()
        guard v == Hello.version else { throw .badValue("protocol version \(v), expected \(Hello.version)") }
        return Hello(regionSize: try r.size(), lineSize: try r.size(), clientId: try r.u64())
    }
}
