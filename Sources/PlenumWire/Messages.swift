import PlenumStore

/// An error reply as a client sees it: a stable code and the store's text.
public struct RemoteError: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: UInt16
    public var message: String
    public init(code: UInt16, message: String) { self.code = code; self.message = message }
    public var description: String { message }
    public var storeCode: ErrorCode? { ErrorCode(rawValue: code) }
}

/// The greeting a store sends right after accepting a client, together with
/// the region's file descriptor (SCM_RIGHTS).
public struct Hello: Equatable, Sendable {
    /// 2: the greeting's descriptor is read-only; write access and ring
    /// pairs come with descriptors of their own (SPEC §9.6, §9.7).
    public static let version: UInt32 = 2
    public var version = Hello.version
    public var regionSize: Int
    public var lineSize: Int
    public var clientId: UInt64
    public init(regionSize: Int, lineSize: Int, clientId: UInt64) {
        self.regionSize = regionSize
        self.lineSize = lineSize
        self.clientId = clientId
    }
}

public enum Wire {
    // MARK: requests

    public static func encode(_ r: StoreRequest, requestId: UInt64) -> [UInt8] {
        switch r {
        case .create(let id, let d, let m): return Frame.build(.create, requestId: requestId) { $0.id(id); $0.int(d); $0.int(m) }
        case .seal(let id, let digest): return Frame.build(.seal, requestId: requestId) { $0.id(id); $0.u64(digest) }
        case .abort(let id): return Frame.build(.abort, requestId: requestId) { $0.id(id) }
        case .get(let ids, let t): return Frame.build(.get, requestId: requestId) { $0.i64(t); $0.ids(ids) }
        case .release(let id): return Frame.build(.release, requestId: requestId) { $0.id(id) }
        case .contains(let id): return Frame.build(.contains, requestId: requestId) { $0.id(id) }
        case .delete(let ids): return Frame.build(.delete, requestId: requestId) { $0.ids(ids) }
        case .list: return Frame.build(.list, requestId: requestId)
        case .evict(let b): return Frame.build(.evict, requestId: requestId) { $0.int(b) }
        case .subscribe: return Frame.build(.subscribe, requestId: requestId)
        case .stats: return Frame.build(.stats, requestId: requestId)
        case .refresh(let ids): return Frame.build(.refresh, requestId: requestId) { $0.ids(ids) }
        }
    }

    /// A small object carried whole in the request (create-and-seal).
    public struct InlineObject: Equatable, Sendable {
        public var id: ObjectID
        public var data: [UInt8]
        public var metadata: [UInt8]
        public init(id: ObjectID, data: [UInt8], metadata: [UInt8] = []) { self.id = id; self.data = data; self.metadata = metadata }
    }

    /// A decoded request: one the core handles, or a create-and-seal the
    /// daemon performs (create, write the bytes in place, seal).
    public enum Request: Equatable, Sendable {
        case core(StoreRequest)
        case createAndSeal([InlineObject])
        /// Ask for a pair of shared-memory rings for requests and replies.
        case openRings
        /// A doorbell: the client posted to its request ring while the store
        /// slept. No reply.
        case wake
        /// Cluster-only requests (create on a node, barrier).
        case cluster(ClusterRequest)
        /// The table of regions the store maps, with their descriptors.
        case regions
        /// The node's view of the cluster, as JSON.
        case clusterStatus
        /// Ask for a writable descriptor of the region (SPEC §9.7).
        case writeAccess
        /// Check sealed objects against their seal-time digests.
        case verify([ObjectID])
        /// Drop one reference per id, with no reply (SPEC §9.2 0x16).
        case releaseQuietly([ObjectID])
    }

    /// One region a store maps and passes to its clients (SPEC §10.7): the
    /// handle that `ObjectLocation.region` names, the owning node, its size
    /// and line size. Its descriptor travels with the reply (SCM_RIGHTS), in
    /// table order.
    public struct RegionInfo: Equatable, Sendable {
        public var handle: Int
        public var node: UInt32
        public var size: Int
        public var lineSize: Int
        public init(handle: Int, node: UInt32, size: Int, lineSize: Int) {
            self.handle = handle
            self.node = node
            self.size = size
            self.lineSize = lineSize
        }
    }

    public static func encode(_ c: ClusterRequest, requestId: UInt64) -> [UInt8] {
        switch c {
        case .createOn(let id, let d, let m, let node):
            return Frame.build(.createOn, requestId: requestId) { $0.id(id); $0.int(d); $0.int(m); $0.i64(node.map { Int64($0) } ?? -1) }
        case .barrier(let name):
            return Frame.build(.barrier, requestId: requestId) { $0.u64(name) }
        }
    }

    public static func encodeRegions(requestId: UInt64) -> [UInt8] { Frame.build(.regions, requestId: requestId) }
    public static func encodeClusterStatus(requestId: UInt64) -> [UInt8] { Frame.build(.clusterStatus, requestId: requestId) }

    public static func encode(_ table: [RegionInfo], requestId: UInt64) -> [UInt8] {
        Frame.build(.regionsReply, requestId: requestId) { w in
            w.u32(UInt32(table.count))
            for r in table { w.int(r.handle); w.u32(r.node); w.int(r.size); w.int(r.lineSize) }
        }
    }

    public static func encodeClusterStatus(_ json: String, requestId: UInt64) -> [UInt8] {
        Frame.build(.clusterStatusReply, requestId: requestId) { w in
            let u = Array(json.utf8)
            w.u32(UInt32(u.count)); w.bytes(u)
        }
    }

    /// Where a client's rings are: offsets in the memory file whose
    /// descriptor travels with the reply (SPEC §9.6).
    public struct RingPair: Equatable, Sendable {
        public var requests: Int
        public var replies: Int
        public var length: Int
        /// The store's "sleeping" word (its own line in the same file): after posting, a client
        /// that reads 1 here rings the doorbell with a `wake` frame.
        public var doorbell: Int
        public init(requests: Int, replies: Int, length: Int, doorbell: Int) {
            self.requests = requests
            self.replies = replies
            self.length = length
            self.doorbell = doorbell
        }
    }

    public static func encodeOpenRings(requestId: UInt64) -> [UInt8] { Frame.build(.openRings, requestId: requestId) }
    public static func encodeWriteAccess(requestId: UInt64) -> [UInt8] { Frame.build(.writeAccess, requestId: requestId) }
    public static func encodeWriteGranted(requestId: UInt64) -> [UInt8] { Frame.build(.writeGranted, requestId: requestId) }
    public static func encodeVerify(_ ids: [ObjectID], requestId: UInt64) -> [UInt8] { Frame.build(.verify, requestId: requestId) { $0.ids(ids) } }
    public static func encodeVerified(_ results: [StoreError?], requestId: UInt64) -> [UInt8] {
        Frame.build(.verified, requestId: requestId) { perObject(&$0, results) }
    }
    /// Releases without a reply: nothing answers it, not even an error.
    public static func encodeReleaseQuietly(_ ids: [ObjectID], requestId: UInt64) -> [UInt8] { Frame.build(.releaseQuietly, requestId: requestId) { $0.ids(ids) } }
    public static let wakeFrame: [UInt8] = Frame.build(.wake, requestId: 0)

    public static func encode(_ p: RingPair, requestId: UInt64) -> [UInt8] {
        Frame.build(.ringsOpened, requestId: requestId) { $0.int(p.requests); $0.int(p.replies); $0.int(p.length); $0.int(p.doorbell) }
    }

    public static func encodeCreateAndSeal(_ objects: [InlineObject], requestId: UInt64) -> [UInt8] {
        Frame.build(.createAndSeal, requestId: requestId) { w in
            w.u32(UInt32(objects.count))
            for o in objects {
                w.id(o.id)
                w.u32(UInt32(o.data.count)); w.bytes(o.data)
                w.u32(UInt32(o.metadata.count)); w.bytes(o.metadata)
            }
        }
    }

    /// Per-object results of a create-and-seal: nil, or the error.
    /// Per-object results (delete, create-and-seal): count u32, then per
    /// object a code (0 = ok) and its text.
    static func perObject(_ w: inout WireWriter, _ results: [StoreError?]) {
        w.u32(UInt32(results.count))
        for e in results { w.u16(e.map { code($0).rawValue } ?? 0); w.text(e?.description ?? "") }
    }

    static func perObject(_ r: inout WireReader) throws(WireError) -> [StoreError?] {
        let n = Int(try r.u32())
        guard n <= Frame.maxIds else { throw .badValue("\(n) results") }
        var es: [StoreError?] = []
        for _ in 0..<n {
            let c = try r.u16(), text = try r.text()
            es.append(c == 0 ? nil : .remote(code: c, text: text))
        }
        return es
    }

    public static func decodeRequest(_ frame: [UInt8]) throws(WireError) -> (requestId: UInt64, request: StoreRequest) {
        let (rid, decoded) = try decode(frame)
        guard case .core(let r) = decoded else { throw .unknownType(Frame.Kind.createAndSeal.rawValue) }
        return (rid, r)
    }

    public static func decode(_ frame: [UInt8]) throws(WireError) -> (requestId: UInt64, request: Request) {
        var (kind, rid, r) = try Frame.open(frame)
        guard let k = Frame.Kind(rawValue: kind), k.rawValue < 0x80 else { throw .unknownType(kind) }
        let request: StoreRequest
        switch k {
        case .openRings:
            guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
            return (rid, .openRings)
        case .wake:
            guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
            return (rid, .wake)
        case .regions, .clusterStatus, .writeAccess:
            guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
            return (rid, k == .regions ? .regions : k == .writeAccess ? .writeAccess : .clusterStatus)
        case .verify:
            let ids = try r.ids(limit: Frame.maxIds)
            guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
            return (rid, .verify(ids))
        case .releaseQuietly:
            let ids = try r.ids(limit: Frame.maxIds)
            guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
            return (rid, .releaseQuietly(ids))
        case .createOn, .barrier:
            let c: ClusterRequest
            if k == .barrier {
                c = .barrier(name: try r.u64())
            } else {
                let id = try r.id(), d = try r.int(), m = try r.int(), node = try r.i64()
                guard node >= -1, node <= Int64(UInt32.max) else { throw .badValue("node \(node)") }
                c = .createOn(id, dataSize: d, metadataSize: m, node: node < 0 ? nil : UInt32(node))
            }
            guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
            return (rid, .cluster(c))
        case .createAndSeal:
            let n = Int(try r.u32())
            guard n >= 1, n <= Frame.maxIds else { throw .badValue("\(n) objects in one create-and-seal") }
            var objects: [InlineObject] = []
            for _ in 0..<n {
                let id = try r.id()
                let data = try r.blob()
                let metadata = try r.blob()
                objects.append(InlineObject(id: id, data: data, metadata: metadata))
            }
            guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
            return (rid, .createAndSeal(objects))
        case .refresh: request = .refresh(try r.ids(limit: Frame.maxIds))
        case .create: request = .create(try r.id(), dataSize: try r.int(), metadataSize: try r.int())
        case .seal: request = .seal(try r.id(), digest: try r.u64())
        case .abort: request = .abort(try r.id())
        case .get:
            let t = try r.i64()
            request = .get(try r.ids(limit: Frame.maxIds), timeoutMs: t)
        case .release: request = .release(try r.id())
        case .contains: request = .contains(try r.id())
        case .delete: request = .delete(try r.ids(limit: Frame.maxIds))
        case .list: request = .list
        case .evict: request = .evict(bytes: try r.int())
        case .subscribe: request = .subscribe
        case .stats: request = .stats
        default: throw .unknownType(kind)
        }
        guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
        return (rid, .core(request))
    }

    // MARK: replies

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

    public static func encode(_ response: StoreResponse, requestId: UInt64) -> [UInt8] {
        switch response {
        case .created(let l): return Frame.build(.created, requestId: requestId) { location(&$0, l) }
        case .sealed: return Frame.build(.sealed, requestId: requestId)
        case .aborted: return Frame.build(.aborted, requestId: requestId)
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
        case .released: return Frame.build(.released, requestId: requestId)
        case .contains(let b): return Frame.build(.containsReply, requestId: requestId) { $0.u8(b ? 1 : 0) }
        case .deleted(let es): return Frame.build(.deleted, requestId: requestId) { perObject(&$0, es) }
        case .list(let rows): return Frame.build(.listReply, requestId: requestId) { w in
            w.u32(UInt32(rows.count))
            for o in rows {
                w.id(o.id); location(&w, o.location); w.u8(o.state == .sealed ? 1 : 0); w.int(o.refCount)
                w.u64(o.createdNanos); w.u64(o.constructNanos ?? .max); w.u64(o.digest ?? 0)
            }
        }
        case .evicted(let b): return Frame.build(.evicted, requestId: requestId) { $0.int(b) }
        case .subscribed: return Frame.build(.subscribed, requestId: requestId)
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
