import PlenumStore

/// The home of an id: rendezvous (highest-random-weight) hashing over the
/// live nodes (SPEC §10.4). Every node computes it alone, from the id and
/// its view of who is live; when a node dies only its ids move.
public enum Home {
    public static func of(_ id: ObjectID, among live: some Collection<NodeID>) -> NodeID {
        var best: NodeID = 0
        var bestWeight: UInt64 = 0
        var first = true
        let key = id.prefix64
        for n in live {
            let w = mix(key ^ (UInt64(n) &+ 1) &* 0x9E37_79B9_7F4A_7C15)
            if first || w > bestWeight || (w == bestWeight && n < best) { best = n; bestWeight = w; first = false }
        }
        return best
    }

    /// Home of a barrier name (same rule, over the name).
    public static func of(name: UInt64, among live: some Collection<NodeID>) -> NodeID {
        of(ObjectID(prefix: name), among: live)
    }

    /// splitmix64's finaliser.
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension ObjectID {
    /// The first 8 bytes, little-endian, folded with the rest (hashing only).
    /// SPEC §10.4 `key(id)`: XOR the bytes in at positions i mod 8, mix
    /// after bytes 7 and 15 — that is, with the id's little-endian words,
    /// mix(mix(w0) ⊕ w1) ⊕ w2 (no per-byte loop, no array).
    var prefix64: UInt64 {
        let (w0, w1, w2) = words
        return Home.mix(Home.mix(w0) ^ w1) ^ UInt64(w2)
    }

    init(prefix: UInt64) {
        var b = [UInt8](repeating: 0, count: ObjectID.byteCount)
        for i in 0..<8 { b[i] = UInt8(truncatingIfNeeded: prefix >> (8 * UInt64(i))) }
        self = ObjectID(bytes: b)!
    }
}

/// The directory entries a node keeps for the ids it is home of
/// (SPEC §10.4): who reserved an id, and once sealed, where it lives.
/// Private memory; a home with a directory index copies every change into
/// it (`changed`, SPEC §10.4 "Directory index").
struct Directory {
    struct Entry: Equatable {
        var reservedBy: NodeID
        var owner: NodeID?
        var location: ObjectLocation?
        var digest: UInt64 = 0
        var sealed: Bool { owner != nil }
    }

    private(set) var entries: [ObjectID: Entry] = [:]
    /// Nodes waiting for an id to be published (blocking gets elsewhere).
    private(set) var watchers: [ObjectID: Set<NodeID>] = [:]

    var count: Int { entries.count }
    /// Ids whose entry changed since the shell last took them (only while
    /// `tracking`: a home with an index).
    var tracking = false
    private(set) var changed: Set<ObjectID> = []

    mutating func takeChanged() -> Set<ObjectID> {
        defer { changed = [] }
        return changed
    }

    private mutating func touch(_ id: ObjectID) { if tracking { changed.insert(id) } }

    /// The one place uniqueness is decided: first reservation wins.
    mutating func reserve(_ id: ObjectID, by node: NodeID) -> Bool {
        guard entries[id] == nil else { return false }
        entries[id] = Entry(reservedBy: node)
        touch(id)
        return true
    }

    mutating func unreserve(_ id: ObjectID, by node: NodeID) {
        if let e = entries[id], !e.sealed, e.reservedBy == node { entries[id] = nil; touch(id) }
    }

    /// Records a sealed object; returns the nodes that watched for it.
    mutating func publish(_ id: ObjectID, owner: NodeID, creator: NodeID, location: ObjectLocation, digest: UInt64) -> Set<NodeID> {
        entries[id] = Entry(reservedBy: creator, owner: owner, location: location, digest: digest)
        touch(id)
        return watchers.removeValue(forKey: id) ?? []
    }

    /// A digest taken after the publish (SPEC §11.3 "Seal": a node alone).
    mutating func redigest(_ id: ObjectID, owner: NodeID, digest: UInt64) {
        guard var e = entries[id], e.owner == owner else { return }
        e.digest = digest
        entries[id] = e
        touch(id)
    }

    mutating func unpublish(_ id: ObjectID, owner: NodeID) {
        if let e = entries[id], e.owner == owner { entries[id] = nil; touch(id) }
    }

    /// What is known of `id`; a watch is registered when it is not sealed.
    mutating func lookup(_ id: ObjectID, watch: NodeID?) -> Entry? {
        let e = entries[id]
        if let w = watch, e?.sealed != true { watchers[id, default: []].insert(w) }
        return e
    }

    mutating func unwatch(_ id: ObjectID, node: NodeID) {
        watchers[id]?.remove(node)
        if watchers[id]?.isEmpty == true { watchers[id] = nil }
    }

    var watcherCount: Int { watchers.values.reduce(0) { $0 + $1.count } }

    /// A node died: its objects and pending reservations are forgotten.
    mutating func drop(node: NodeID) {
        var gone: [ObjectID] = []
        entries = entries.filter { id, e in
            let keep = e.owner != node && !(e.owner == nil && e.reservedBy == node)
            if !keep { gone.append(id) }
            return keep
        }
        for id in gone { touch(id) }
        for (id, w) in watchers where w.contains(node) {
            var s = w
            s.remove(node)
            watchers[id] = s.isEmpty ? nil : s
        }
    }

    /// Keeps only the entries whose home is still `me` (membership changed).
    mutating func keep(where isMine: (ObjectID) -> Bool) {
        var gone: [ObjectID] = []
        entries = entries.filter { id, _ in
            let keep = isMine(id)
            if !keep { gone.append(id) }
            return keep
        }
        for id in gone { touch(id) }
        watchers = watchers.filter { isMine($0.key) }
    }
}
