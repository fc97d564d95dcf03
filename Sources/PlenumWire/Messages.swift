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

    /// A request whose body is one id: its kind and id
    /// (`Frame.writeOneID`); nil for any other.
    public static func oneID(_ r: StoreRequest) -> (kind: Frame.Kind, id: ObjectID)? {
        switch r {
        case .contains(let id): return (.contains, id)
        case .release(let id): return (.release, id)
        case .abort(let id): return (.abort, id)
        default: return nil
        }
    }

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
        /// Start (true) or stop recording hop events; answered with what was recorded.
        case hopTrace(on: Bool)
        /// What the store counts, as Prometheus text (SPEC §10.9 "Metrics").
        case metrics
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
    public static func encodeMetrics(requestId: UInt64) -> [UInt8] { Frame.build(.metrics, requestId: requestId) }

    public static func encodeMetrics(_ text: String, requestId: UInt64) -> [UInt8] {
        Frame.build(.metricsReply, requestId: requestId) { w in
            let u = Array(text.utf8)
            w.u32(UInt32(u.count)); w.bytes(u)
        }
    }

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
        case .regions, .clusterStatus, .writeAccess, .metrics:
            guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
            return (rid, k == .regions ? .regions : k == .writeAccess ? .writeAccess : k == .metrics ? .metrics : .clusterStatus)
        case .verify:
            let ids = try r.ids(limit: Frame.maxIds)
            guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
            return (rid, .verify(ids))
        case .releaseQuietly:
            let ids = try r.ids(limit: Frame.maxIds)
            guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
            return (rid, .releaseQuietly(ids))
        case .hopTrace:
            let on = try r.u8()
            guard on <= 1 else { throw .badValue("hopTrace on \(on)") }
            guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
            return (rid, .hopTrace(on: on == 1))
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
}
