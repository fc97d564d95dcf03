import PlenumStore

/// What the daemon asks of the core beside `handle`: the Plasma shell's
/// requests that are not §9.2 client requests (SPEC §11), a reply the shell
/// composed, and a held reference's location for `verify`.
extension ClusterCore {
    /// A create with Plasma's `evict_if_full = false` (SPEC §11.9): reserved
    /// at its home as any, then placed in this node's free memory only —
    /// no eviction, no spill to a peer; `outOfMemory` if it does not fit.
    public mutating func createWithoutEviction(_ c: ClientID, requestId: UInt64, _ id: ObjectID, dataSize: Int, metadataSize: Int,
                                               now: UInt64) -> [ClusterAction] {
        var out: [ClusterAction] = []
        guard store.knows(client: c) else {
            reply(c, requestId, .error(.unknownClient(c)), into: &out)
            return out
        }
        create(Create(client: c, requestId: requestId, id: id, dataSize: dataSize, metadataSize: metadataSize, target: nil, evict: false),
               now: now, into: &out)
        expire(now: now, into: &out)
        return out
    }

    /// Plasma's deletion cache (SPEC §11.9): a local object a Plasma client
    /// deleted while in use or unsealed goes at its last release.
    @discardableResult
    public mutating func deleteAtLastRelease(_ id: ObjectID) -> Bool { store.deleteAtLastRelease(id) }

    /// A digest taken after the seal by a node alone, whose memory no other
    /// host maps (SPEC §11.3 "Seal"): recorded in the store and in the
    /// directory (this node is home of every id). False, and nothing
    /// recorded, when `id` no longer names the object created at `created`
    /// or this node is not alone.
    public mutating func recordDigest(_ id: ObjectID, _ digest: UInt64, ifCreatedAt created: UInt64) -> Bool {
        guard live == [me], !indexesDirectory, store.recordDigest(id, digest, ifCreatedAt: created) else { return false }
        directory.redigest(id, owner: me, digest: digest)
        return true
    }

    /// A reply the shell composed (create-and-seal), held like the core's own.
    public mutating func deferredReply(_ c: ClientID, requestId: UInt64, _ r: StoreResponse) -> [ClusterAction] {
        var out: [ClusterAction] = []
        reply(c, requestId, r, into: &out)
        return out
    }

    /// The location and seal-time digest of an object in a peer's memory
    /// that `client` holds a reference to (for `verify`, SPEC §9.7).
    public func heldRemote(_ client: ClientID, _ id: ObjectID) -> (ObjectLocation, UInt64)? {
        remoteRefs[client]?[id].map { ($0.location, $0.digest) }
    }
}
