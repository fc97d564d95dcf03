import PlenumStore

/// The core's side of the directory index (SPEC §10.4 "Directory index"):
/// the changes a home's shell copies into its index, and the peeks a
/// reader's shell answers from its peers' indexes.
extension ClusterCore {
    /// Whether this node keeps its directory index (the shell owns the
    /// index itself; the core only reports what changed).
    public var indexesDirectory: Bool {
        get { directory.tracking }
        set { directory.tracking = newValue }
    }

    /// The entries changed since the last call, as the index shows them
    /// (nil: no entry). The shell writes them into its index before it
    /// carries out any action of the same call (SPEC §10.4 "Directory
    /// index": an index is never behind what its home announced).
    public mutating func takeIndexChanges() -> [(ObjectID, IndexAnswer?)] {
        guard directory.tracking else { return [] }
        return directory.takeChanged().map { id in
            guard let e = directory.entries[id] else { return (id, nil) }
            return (id, e.owner.map { IndexAnswer.sealed(owner: $0) } ?? .reserved(by: e.reservedBy))
        }
    }

    /// What `h`'s index says of `id`, if this node reads it and the answer
    /// is not contradicted by what this node itself knows: an entry of this
    /// node's own (a reservation it released, an object it no longer holds)
    /// may be one its one-way unreserve or unpublish has not yet reached —
    /// messages to the home would have queued behind those, a read does
    /// not; such an id is asked by message (SPEC §10.4 "Directory index").
    /// The caller counts the answer (`usedPeek`) or falls back (`askedAfterPeek`).
    mutating func peek(_ id: ObjectID, at h: NodeID) -> IndexAnswer? {
        guard let peeker, let info = peers[h] else { return nil }
        let a = peeker.peek(id, at: h, incarnation: info.incarnation)
        let stale: Bool
        switch a {
        case nil: stale = true
        case .reserved(let by)?: stale = by == me && !myReservations.contains(id)
        case .sealed(let owner)?: stale = owner == me && !store.isSealed(id)
        case .absent?: stale = false
        }
        if stale { counters.indexMisses += 1; return nil }
        return a
    }

    /// An index answer was used / was not enough after all (status `peeks`, `peeks_asked`).
    mutating func usedPeek() { counters.indexPeeks += 1 }
    mutating func askedAfterPeek() { counters.indexMisses += 1 }
}
