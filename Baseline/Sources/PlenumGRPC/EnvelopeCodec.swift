import Foundation
import PlenumCluster
import PlenumStore

/// `PeerMessage` ⇄ protobuf (SPEC §10.11, `Protos/plenum_peer.proto`).
/// What arrives is untrusted exactly as a ring slot is: after the protobuf
/// fields are read (ids of 20 bytes, codes that fit 16 bits, a state in
/// 0…2), the message is re-checked by the §10.5 decoder itself, so both
/// transports accept and refuse the same messages.
public enum EnvelopeCodec {
    public enum Failure: Error, CustomStringConvertible {
        case empty
        case notCarried(PeerMessage.Kind)
        case badField(String)
        case refused(String)
        public var description: String {
            switch self {
            case .empty: return "an envelope without a message"
            case .notCarried(let k): return "\(k) is never carried by gRPC (the rings' own message)"
            case .badField(let s): return "bad field: \(s)"
            case .refused(let s): return "refused by the §10.5 decoder: \(s)"
            }
        }
    }

    /// Replies (answers to a correlation), as opposed to requests and
    /// one-way messages.
    public static func isReply(_ k: PeerMessage.Kind) -> Bool {
        switch k {
        case .lookupReply, .acquireReply, .allocateReply, .result, .listChunk: return true
        default: return false
        }
    }

    static func loc(_ l: ObjectLocation) -> Plenum_Peer_V1_Location {
        var p = Plenum_Peer_V1_Location()
        p.offset = Int64(l.offset); p.dataSize = Int64(l.dataSize); p.metadataSize = Int64(l.metadataSize)
        p.reserved = Int64(l.reserved); p.region = Int64(l.region)
        return p
    }

    static func loc(_ p: Plenum_Peer_V1_Location) -> ObjectLocation {
        // Int64 and Int are the same width here; signs are checked by the
        // §10.5 decoder afterwards.
        ObjectLocation(offset: Int(p.offset), dataSize: Int(p.dataSize), metadataSize: Int(p.metadataSize),
                       reserved: Int(p.reserved), region: Int(p.region))
    }

    static func id(_ d: Data) throws(Failure) -> ObjectID {
        guard let id = ObjectID(bytes: Array(d)) else { throw .badField("an object id of \(d.count) bytes (must be 20)") }
        return id
    }

    static func code(_ c: UInt32) throws(Failure) -> UInt16 {
        guard let v = UInt16(exactly: c) else { throw .badField("error code \(c) does not fit 16 bits") }
        return v
    }

    public static func encode(_ m: PeerMessage, from: NodeID, correlation: UInt64) throws(Failure) -> Plenum_Peer_V1_Envelope {
        var e = Plenum_Peer_V1_Envelope()
        e.from = from
        e.correlation = correlation
        switch m {
        // Rings only: forwarded acquires, unpublishes and allocations (SPEC
        // §10.6 "get", "delete", "create") are off over gRPC.
        // Views need FIFO links (SPEC §10.4 "Views"): off over gRPC, so
        // reserves and publishes carry view 0 and no view message is sent.
        case .hello, .relay, .lookupAcquire, .acquireFor, .unpublishFor, .reserveAllocate, .allocateFor, .view, .rehomed: throw .notCarried(m.kind)
        case .reserve(let i, _): e.reserve = .with { $0.id = Data(i.bytes) }
        case .unreserve(let i): e.unreserve = .with { $0.id = Data(i.bytes) }
        case .publish(let i, let owner, let creator, let l, let d, _):
            e.publish = .with { $0.id = Data(i.bytes); $0.owner = owner; $0.creator = creator; $0.location = loc(l); $0.digest = d }
        case .unpublish(let i, let owner): e.unpublish = .with { $0.id = Data(i.bytes); $0.owner = owner }
        case .lookup(let i, let watch): e.lookup = .with { $0.id = Data(i.bytes); $0.watch = watch }
        case .published(let i, let owner, let l, let d):
            e.published = .with { $0.id = Data(i.bytes); $0.owner = owner; $0.location = loc(l); $0.digest = d }
        case .unwatch(let i): e.unwatch = .with { $0.id = Data(i.bytes) }
        case .lookupReply(let s, let owner, let l, let d):
            e.lookupReply = .with { $0.state = UInt32(s.rawValue); $0.owner = owner; $0.location = loc(l); $0.digest = d }
        case .acquire(let i): e.acquire = .with { $0.id = Data(i.bytes) }
        case .acquireReply(let c, let l, let d): e.acquireReply = .with { $0.code = UInt32(c); $0.location = loc(l); $0.digest = d }
        case .release(let i): e.release = .with { $0.id = Data(i.bytes) }
        case .allocate(let i, let ds, let ms): e.allocate = .with { $0.id = Data(i.bytes); $0.dataSize = Int64(ds); $0.metadataSize = Int64(ms) }
        case .allocateReply(let c, let l): e.allocateReply = .with { $0.code = UInt32(c); $0.location = loc(l) }
        case .seal(let i, let d): e.seal = .with { $0.id = Data(i.bytes); $0.digest = d }
        case .abort(let i): e.abort = .with { $0.id = Data(i.bytes) }
        case .delete(let i): e.delete = .with { $0.id = Data(i.bytes) }
        case .result(let c): e.result = .with { $0.code = UInt32(c) }
        case .notifySealed(let i, let owner, let l, let d):
            e.notifySealed = .with { $0.id = Data(i.bytes); $0.owner = owner; $0.location = loc(l); $0.digest = d }
        case .notifyDeleted(let i): e.notifyDeleted = .with { $0.id = Data(i.bytes) }
        case .barrierArrive(let n, let r): e.barrierArrive = .with { $0.name = n; $0.round = r }
        case .barrierRelease(let n, let r, let count): e.barrierRelease = .with { $0.name = n; $0.round = r; $0.nodes = count }
        case .list: e.list = .init()
        case .listChunk(let rows, let last):
            e.listChunk = .with { c in
                c.last = last
                c.rows = rows.map { o in
                    .with {
                        $0.id = Data(o.id.bytes); $0.location = loc(o.location); $0.refCount = Int64(o.refCount)
                        $0.createdNanos = o.createdNanos; $0.digest = o.digest ?? 0
                        if let n = o.constructNanos { $0.constructNanos = n }
                    }
                }
            }
        }
        return e
    }

    public static func decode(_ e: Plenum_Peer_V1_Envelope) throws(Failure) -> PeerMessage {
        let m: PeerMessage
        switch e.message {
        case nil: throw .empty
        case .reserve(let x)?: m = .reserve(try id(x.id), view: 0)
        case .unreserve(let x)?: m = .unreserve(try id(x.id))
        case .publish(let x)?: m = .publish(try id(x.id), owner: x.owner, creator: x.creator, location: loc(x.location), digest: x.digest, view: 0)
        case .unpublish(let x)?: m = .unpublish(try id(x.id), owner: x.owner)
        case .lookup(let x)?: m = .lookup(try id(x.id), watch: x.watch)
        case .published(let x)?: m = .published(try id(x.id), owner: x.owner, location: loc(x.location), digest: x.digest)
        case .unwatch(let x)?: m = .unwatch(try id(x.id))
        case .lookupReply(let x)?:
            guard let s = UInt8(exactly: x.state).flatMap(DirectoryState.init(rawValue:)) else { throw .badField("directory state \(x.state)") }
            m = .lookupReply(s, owner: x.owner, location: loc(x.location), digest: x.digest)
        case .acquire(let x)?: m = .acquire(try id(x.id))
        case .acquireReply(let x)?: m = .acquireReply(code: try code(x.code), location: loc(x.location), digest: x.digest)
        case .release(let x)?: m = .release(try id(x.id))
        case .allocate(let x)?: m = .allocate(try id(x.id), dataSize: Int(x.dataSize), metadataSize: Int(x.metadataSize))
        case .allocateReply(let x)?: m = .allocateReply(code: try code(x.code), location: loc(x.location))
        case .seal(let x)?: m = .seal(try id(x.id), digest: x.digest)
        case .abort(let x)?: m = .abort(try id(x.id))
        case .delete(let x)?: m = .delete(try id(x.id))
        case .result(let x)?: m = .result(code: try code(x.code))
        case .notifySealed(let x)?: m = .notifySealed(try id(x.id), owner: x.owner, location: loc(x.location), digest: x.digest)
        case .notifyDeleted(let x)?: m = .notifyDeleted(try id(x.id))
        case .barrierArrive(let x)?: m = .barrierArrive(name: x.name, round: x.round)
        case .barrierRelease(let x)?: m = .barrierRelease(name: x.name, round: x.round, nodes: x.nodes)
        case .list?: m = .list
        case .listChunk(let x)?:
            guard x.rows.count <= PeerMessage.listRowsPerChunk else { throw .badField("\(x.rows.count) rows in one list chunk") }
            var rows: [ObjectInfo] = []
            for r in x.rows {
                rows.append(ObjectInfo(id: try id(r.id), location: loc(r.location), state: .sealed, refCount: Int(r.refCount),
                                       createdNanos: r.createdNanos, constructNanos: r.hasConstructNanos ? r.constructNanos : nil, digest: r.digest))
            }
            m = .listChunk(rows, last: x.last)
        }
        // The same checks as a ring slot (sizes ≥ 0, locations that do not
        // overflow, reference counts ≥ 0): one decoder, one rule set.
        do { return try PeerMessage.decode(kind: m.kind.rawValue, body: m.encodeBody()) } catch { throw .refused("\(error)") }
    }
}
