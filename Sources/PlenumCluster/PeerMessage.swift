import PlenumStore
import PlenumWire

/// A node of the cluster, numbered as in the cluster file (SPEC §10.1).
public typealias NodeID = UInt32

/// What a directory (home node) knows of an id (SPEC §10.4).
public enum DirectoryState: UInt8, Sendable {
    case absent = 0, reserved = 1, sealed = 2
}

/// Every store-to-store message (SPEC §10.5). One message fills one ring
/// slot: the slot's `kind` is the message type, its `requestId` the
/// correlation id (0 for one-way messages; a reply echoes its request's),
/// the payload the body below, little-endian, decoded with the same
/// bounds-checked reader as client frames.
public enum PeerMessage: Equatable, Sendable {
    /// First message of every attachment of a producer: who is talking.
    case hello(incarnation: UInt64)
    // directory (to the id's home node)
    /// `view`: the sender's view digest (SPEC §10.4 "Views"); a home in
    /// another view refuses it.
    case reserve(ObjectID, view: UInt64)
    case unreserve(ObjectID)
    /// A reserve whose granted reservation the home hands on to `owner` as
    /// an `allocateFor` (SPEC §10.6 "create"): answered by the owner's
    /// `allocateReply`, or by the home's `result` (a refusal; 0: reserved,
    /// not handed on — the creator allocates itself).
    case reserveAllocate(ObjectID, view: UInt64, owner: NodeID, dataSize: Int, metadataSize: Int)
    /// `view` as for reserve; a home in another view parks it.
    case publish(ObjectID, owner: NodeID, creator: NodeID, location: ObjectLocation, digest: UInt64, view: UInt64)
    case unpublish(ObjectID, owner: NodeID)
    /// Owner → home, for a peer's `delete` the owner carried out (SPEC
    /// §10.6 "delete"): unpublish, then answer `requester` with a `result`
    /// of this message's correlation (the requester's).
    case unpublishFor(ObjectID, owner: NodeID, requester: NodeID)
    case lookup(ObjectID, watch: Bool)
    /// A reader's lookup that asks the home to have the owner grant the
    /// reader a reference when the id is sealed (SPEC §10.6 "get"):
    /// answered by an `acquireReply` (from the home or the owner) or, when
    /// the home does not forward, a `lookupReply`.
    case lookupAcquire(ObjectID, watch: Bool)
    /// Home → owner: acquire `id` for `reader` and answer the reader with
    /// this message's correlation (the reader's). `incarnation`: the
    /// reader's life the home took the request from — an owner that knows
    /// another life of the reader refuses (its answer would lend the new
    /// life a reference it never asked for).
    case acquireFor(ObjectID, reader: NodeID, incarnation: UInt64)
    /// Home → owner: allocate `id` for `creator` (of that incarnation, as
    /// for `acquireFor`) and answer the creator with this message's
    /// correlation (the creator's).
    case allocateFor(ObjectID, dataSize: Int, metadataSize: Int, creator: NodeID, incarnation: UInt64)
    /// The watcher no longer waits for this id (its get ended).
    case unwatch(ObjectID)
    /// The sender moved to this view (to every live peer, before anything
    /// else it sends in it): what it sent in other views is superseded.
    case view(UInt64)
    /// home handoff (SPEC §10.4 "Handoff"): the sender finished re-homing in
    /// this view — everything it re-published and re-reserved came first.
    case rehomed(UInt64)
    case lookupReply(DirectoryState, owner: NodeID, location: ObjectLocation, digest: UInt64)
    /// A watched id was published (home → watcher).
    case published(ObjectID, owner: NodeID, location: ObjectLocation, digest: UInt64)
    // objects (to the owner of the memory)
    case acquire(ObjectID)
    case acquireReply(code: UInt16, location: ObjectLocation, digest: UInt64)
    case release(ObjectID)
    case allocate(ObjectID, dataSize: Int, metadataSize: Int)
    case allocateReply(code: UInt16, location: ObjectLocation)
    case seal(ObjectID, digest: UInt64)
    case abort(ObjectID)
    case delete(ObjectID)
    /// Reply to reserve, seal, abort and delete: 0 or a §9.3 error code.
    case result(code: UInt16)
    // notifications (owner → nodes with subscribers)
    case notifySealed(ObjectID, owner: NodeID, location: ObjectLocation, digest: UInt64)
    case notifyDeleted(ObjectID)
    // barrier (to / from the coordinator, the home of the name)
    case barrierArrive(name: UInt64, round: UInt64)
    case barrierRelease(name: UInt64, round: UInt64, nodes: UInt32)
    // listing
    case list
    case listChunk([ObjectInfo], last: Bool)
    /// Transport envelope (SPEC §10.3): a message from `from` to `to`, two
    /// nodes that share no memory, carried by a relay that shares memory
    /// with both. Never seen by the cluster core.
    case relay(to: NodeID, from: NodeID, kind: UInt16, correlation: UInt64, body: [UInt8])

    /// Ring slot kinds (SPEC §10.5 table).
    public enum Kind: UInt16, Sendable {
        case hello = 0x01
        case reserve = 0x10, unreserve, publish, unpublish, lookup, published, unwatch, lookupAcquire, view, rehomed, unpublishFor, reserveAllocate
        case acquire = 0x20, release, allocate, seal, abort, delete, acquireFor, allocateFor
        case notifySealed = 0x30, notifyDeleted
        case barrierArrive = 0x40, barrierRelease
        case list = 0x50
        case relay = 0x60
        case lookupReply = 0x94
        case acquireReply = 0xA0, allocateReply = 0xA2, result = 0xA3
        case listChunk = 0xD0
    }

    /// Rows per list chunk: 9 × 100 bytes fit a 1024-byte slot.
    public static let listRowsPerChunk = 9

    public var kind: Kind {
        switch self {
        case .hello: return .hello
        case .reserve: return .reserve
        case .unreserve: return .unreserve
        case .reserveAllocate: return .reserveAllocate
        case .allocateFor: return .allocateFor
        case .publish: return .publish
        case .unpublish: return .unpublish
        case .unpublishFor: return .unpublishFor
        case .lookup: return .lookup
        case .lookupAcquire: return .lookupAcquire
        case .acquireFor: return .acquireFor
        case .unwatch: return .unwatch
        case .view: return .view
        case .rehomed: return .rehomed
        case .lookupReply: return .lookupReply
        case .published: return .published
        case .acquire: return .acquire
        case .acquireReply: return .acquireReply
        case .release: return .release
        case .allocate: return .allocate
        case .allocateReply: return .allocateReply
        case .seal: return .seal
        case .abort: return .abort
        case .delete: return .delete
        case .result: return .result
        case .notifySealed: return .notifySealed
        case .notifyDeleted: return .notifyDeleted
        case .barrierArrive: return .barrierArrive
        case .barrierRelease: return .barrierRelease
        case .list: return .list
        case .listChunk: return .listChunk
        case .relay: return .relay
        }
    }

    /// A reservation request, judged by the home as one (SPEC §10.4).
    public var isReserve: Bool {
        switch self {
        case .reserve, .reserveAllocate: return true
        default: return false
        }
    }

    /// Requests that must carry a correlation id (a reply is owed). Publish
    /// and unpublish carry one only when the sender waits for the home; a
    /// reserve carries none when it is a re-homing one (a reservation its
    /// sender already holds, SPEC §10.4 "Handoff").
    public var expectsReply: Bool {
        switch self {
        case .lookup, .lookupAcquire, .acquire, .acquireFor, .unpublishFor, .reserveAllocate, .allocateFor, .allocate, .seal, .abort, .delete, .list: return true
        default: return false
        }
    }

    /// The body bytes (the slot payload).
    public func encodeBody() -> [UInt8] {
        var w = WireWriter(reserving: 96)   // every body but a list chunk's or a relay's
        switch self {
        case .hello(let inc): w.u64(inc)
        case .unreserve(let id), .acquire(let id), .release(let id), .abort(let id),
             .delete(let id), .notifyDeleted(let id), .unwatch(let id):
            w.id(id)
        case .reserve(let id, let v): w.id(id); w.u64(v)
        case .reserveAllocate(let id, let v, let owner, let ds, let ms): w.id(id); w.u64(v); w.u32(owner); w.int(ds); w.int(ms)
        case .allocateFor(let id, let ds, let ms, let creator, let inc): w.id(id); w.int(ds); w.int(ms); w.u32(creator); w.u64(inc)
        case .view(let v), .rehomed(let v): w.u64(v)
        case .publish(let id, let owner, let creator, let l, let d, let v):
            w.id(id); w.u32(owner); w.u32(creator); Wire.location(&w, l); w.u64(d); w.u64(v)
        case .unpublish(let id, let owner): w.id(id); w.u32(owner)
        case .unpublishFor(let id, let owner, let requester): w.id(id); w.u32(owner); w.u32(requester)
        case .lookup(let id, let watch), .lookupAcquire(let id, let watch): w.id(id); w.u8(watch ? 1 : 0)
        case .acquireFor(let id, let reader, let inc): w.id(id); w.u32(reader); w.u64(inc)
        case .lookupReply(let s, let owner, let l, let d): w.u8(s.rawValue); w.u32(owner); Wire.location(&w, l); w.u64(d)
        case .published(let id, let owner, let l, let d), .notifySealed(let id, let owner, let l, let d):
            w.id(id); w.u32(owner); Wire.location(&w, l); w.u64(d)
        case .acquireReply(let c, let l, let d): w.u16(c); Wire.location(&w, l); w.u64(d)
        case .allocate(let id, let ds, let ms): w.id(id); w.int(ds); w.int(ms)
        case .allocateReply(let c, let l): w.u16(c); Wire.location(&w, l)
        case .seal(let id, let d): w.id(id); w.u64(d)
        case .result(let c): w.u16(c)
        case .barrierArrive(let n, let r): w.u64(n); w.u64(r)
        case .barrierRelease(let n, let r, let count): w.u64(n); w.u64(r); w.u32(count)
        case .list: break
        case .relay(let to, let from, let kind, let corr, let body):
            w.u32(to); w.u32(from); w.u16(kind); w.u64(corr); w.u32(UInt32(body.count)); w.bytes(body)
        case .listChunk(let rows, let last):
            w.u8(last ? 1 : 0)
            w.u32(UInt32(rows.count))
            for o in rows {
                w.id(o.id); Wire.location(&w, o.location); w.int(o.refCount); w.u64(o.createdNanos)
                w.u64(o.constructNanos ?? .max); w.u64(o.digest ?? 0)
            }
        }
        return w.bytes
    }

    /// Decodes a slot: every field bounds-checked, trailing bytes refused.
    public static func decode(kind raw: UInt16, body: [UInt8]) throws(WireError) -> PeerMessage {
        guard let kind = Kind(rawValue: raw) else { throw .unknownType(raw) }
        var r = WireReader(body)
        let m: PeerMessage
        switch kind {
        case .hello: m = .hello(incarnation: try r.u64())
        case .reserve: m = .reserve(try r.id(), view: try r.u64())
        case .reserveAllocate:
            m = .reserveAllocate(try r.id(), view: try r.u64(), owner: try r.u32(), dataSize: try r.size(), metadataSize: try r.size())
        case .allocateFor:
            m = .allocateFor(try r.id(), dataSize: try r.size(), metadataSize: try r.size(), creator: try r.u32(), incarnation: try r.u64())
        case .view: m = .view(try r.u64())
        case .rehomed: m = .rehomed(try r.u64())
        case .unreserve: m = .unreserve(try r.id())
        case .unwatch: m = .unwatch(try r.id())
        case .acquire: m = .acquire(try r.id())
        case .release: m = .release(try r.id())
        case .abort: m = .abort(try r.id())
        case .delete: m = .delete(try r.id())
        case .notifyDeleted: m = .notifyDeleted(try r.id())
        case .publish:
            m = .publish(try r.id(), owner: try r.u32(), creator: try r.u32(), location: try Wire.location(&r), digest: try r.u64(), view: try r.u64())
        case .unpublish: m = .unpublish(try r.id(), owner: try r.u32())
        case .unpublishFor: m = .unpublishFor(try r.id(), owner: try r.u32(), requester: try r.u32())
        case .lookup, .lookupAcquire:
            let id = try r.id()
            let w = try r.u8()
            guard w <= 1 else { throw .badValue("watch flag \(w)") }
            m = kind == .lookup ? .lookup(id, watch: w == 1) : .lookupAcquire(id, watch: w == 1)
        case .acquireFor: m = .acquireFor(try r.id(), reader: try r.u32(), incarnation: try r.u64())
        case .lookupReply:
            let s = try r.u8()
            guard let state = DirectoryState(rawValue: s) else { throw .badValue("directory state \(s)") }
            m = .lookupReply(state, owner: try r.u32(), location: try Wire.location(&r), digest: try r.u64())
        case .published:
            m = .published(try r.id(), owner: try r.u32(), location: try Wire.location(&r), digest: try r.u64())
        case .notifySealed:
            m = .notifySealed(try r.id(), owner: try r.u32(), location: try Wire.location(&r), digest: try r.u64())
        case .acquireReply: m = .acquireReply(code: try r.u16(), location: try Wire.location(&r), digest: try r.u64())
        case .allocate: m = .allocate(try r.id(), dataSize: try r.size(), metadataSize: try r.size())   // sizes ≥ 0 (SPEC §10.5)
        case .allocateReply: m = .allocateReply(code: try r.u16(), location: try Wire.location(&r))
        case .seal: m = .seal(try r.id(), digest: try r.u64())
        case .result: m = .result(code: try r.u16())
        case .barrierArrive: m = .barrierArrive(name: try r.u64(), round: try r.u64())
        case .barrierRelease: m = .barrierRelease(name: try r.u64(), round: try r.u64(), nodes: try r.u32())
        case .list: m = .list
        case .relay:
            let to = try r.u32(), from = try r.u32(), kind = try r.u16(), corr = try r.u64()
            let body = try r.blob()
            guard kind != Kind.relay.rawValue else { throw .badValue("a relay inside a relay") }
            m = .relay(to: to, from: from, kind: kind, correlation: corr, body: body)
        case .listChunk:
            let last = try r.u8()
            guard last <= 1 else { throw .badValue("last flag \(last)") }
            let n = Int(try r.u32())
            guard n <= listRowsPerChunk else { throw .badValue("\(n) rows in one list chunk") }
            var rows: [ObjectInfo] = []
            for _ in 0..<n {
                let id = try r.id(), l = try Wire.location(&r), refs = try r.int()
                let created = try r.u64(), construct = try r.u64(), digest = try r.u64()
                guard refs >= 0 else { throw .badValue("refCount \(refs)") }
                rows.append(ObjectInfo(id: id, location: l, state: .sealed, refCount: refs, createdNanos: created,
                                       constructNanos: construct == .max ? nil : construct, digest: digest))
            }
            m = .listChunk(rows, last: last == 1)
        }
        guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
        return m
    }
}
