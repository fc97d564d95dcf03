import PlenumStore

/// Local clients' requests (SPEC §10.6): objects in this node's memory take
/// the single-node path; anything else goes to the id's home or owner.
extension ClusterCore {
    mutating func local(_ e: StoreEvent, now: UInt64, into out: inout [ClusterAction]) {
        switch e {
        case .connected, .tick:
            localActions(of: e, now: now, into: &out)
        case .disconnected(let c):
            disconnect(c, now: now, into: &out)
        case .request(let c, let rid, let r):
            guard c & Self.peerBit == 0 else { reply(c, rid, .error(.unknownClient(c)), into: &out); return }
            request(c, rid, r, now: now, into: &out)
        }
    }

    mutating func cluster(_ c: ClientID, _ rid: UInt64, _ r: ClusterRequest, now: UInt64, into out: inout [ClusterAction]) {
        switch r {
        case .createOn(let id, let d, let m, let node):
            create(Create(client: c, requestId: rid, id: id, dataSize: d, metadataSize: m, target: node), now: now, into: &out)
        case .barrier(let name):
            barrier(c, rid, name: name, now: now, into: &out)
        }
    }

    mutating func request(_ c: ClientID, _ rid: UInt64, _ r: StoreRequest, now: UInt64, into out: inout [ClusterAction]) {
        switch r {
        case .create(let id, let d, let m):
            create(Create(client: c, requestId: rid, id: id, dataSize: d, metadataSize: m, target: nil), now: now, into: &out)
        case .seal(let id, let digest):
            if let n = remoteUnsealed[c]?[id]?.node {
                send(.seal(id, digest: digest), to: n, awaiting: .remoteSeal(c, requestId: rid, id: id), now: now, into: &out)
                return
            }
            reply(c, rid, sealHere(c, id, digest: digest, now: now, into: &out) ?? .error(.notFound(id)), into: &out)
        case .abort(let id):
            if let u = remoteUnsealed[c]?[id] {
                // Whatever the client left dirty in the range (it may abort
                // without writing back) is written back while the range is
                // still its own, before the owner can reuse it (SPEC §10.8).
                out.append(.invalidate(u.location))
                send(.abort(id), to: u.node, awaiting: .remoteAbort(c, requestId: rid, id: id), now: now, into: &out)
                return
            }
            let r = runLocal(.abort(id), as: c, now: now, into: &out)
            if case .aborted = r {
                localUnsealed[c]?.remove(id)
                releaseReservation(id, now: now, into: &out)
            }
            reply(c, rid, r ?? .error(.notFound(id)), into: &out)
        case .get(let ids, let timeoutMs):
            get(c, rid, ids, timeoutMs: timeoutMs, now: now, into: &out)
        case .release(let id):
            if let held = remoteRefs[c]?[id] {
                var less = held
                less.count -= 1
                remoteRefs[c]![id] = less.count > 0 ? less : nil
                send(.release(id), to: held.node, now: now, into: &out)
                reply(c, rid, .released, into: &out)
                return
            }
            passThrough(c, rid, r, now: now, into: &out)
        case .contains(let id):
            if let known = knownSealed(id) {
                reply(c, rid, .contains(known), into: &out)
            } else {
                send(.lookup(id, watch: false), to: home(of: id), awaiting: .contains(c, requestId: rid), now: now, into: &out)
            }
        case .delete(let ids):
            delete(c, rid, ids, now: now, into: &out)
        case .list:
            list(c, rid, now: now, into: &out)
        case .evict, .subscribe, .stats, .refresh:
            passThrough(c, rid, r, now: now, into: &out)
        }
    }

    /// Whether `id` is sealed, when this node can tell without a message
    /// (SPEC §10.6): sealed here, this node is its home, or the home's
    /// directory index answers. nil: the home must be asked.
    mutating func knownSealed(_ id: ObjectID) -> Bool? {
        if store.isSealed(id) { return true }
        let h = home(of: id)
        if h == me { return directory.lookup(id, watch: nil)?.sealed == true }
        guard let a = peek(id, at: h) else { return nil }
        usedPeek()
        if case .sealed = a { return true }
        return false
    }

    /// A client's `contains` answered on the spot, the reply returned
    /// rather than emitted (the shell's short path for the commonest
    /// lookup): exactly what `handle` would reply, or nil when `handle`
    /// must take the request — the answer needs the home, or c's replies
    /// are held behind acknowledgements (they keep their order).
    public mutating func containsAtOnce(_ id: ObjectID, for c: ClientID) -> Bool? {
        guard c & Self.peerBit == 0, awaitingAcks.isEmpty || awaitingAcks[c] == nil else { return nil }
        return knownSealed(id)
    }

    /// A client's get of ids all sealed here, answered on the spot: exactly
    /// the reply and references `handle` would give (the single-node path),
    /// or nil when `handle` must take it — an id not sealed here, or c's
    /// replies held behind acknowledgements (they keep their order).
    public mutating func getAtOnce(_ ids: [ObjectID], for c: ClientID) -> [ObjectLocation?]? {
        guard c & Self.peerBit == 0, awaitingAcks.isEmpty || awaitingAcks[c] == nil else { return nil }
        return store.getAtOnce(ids, client: c)
    }

    /// A client's release of a reference to an object here that only counts
    /// down, done on the spot (its reply is `released`); false when `handle`
    /// must take it (a remote reference, no reference, a removal, held replies).
    public mutating func releaseAtOnce(_ id: ObjectID, for c: ClientID) -> Bool {
        guard c & Self.peerBit == 0, awaitingAcks.isEmpty || awaitingAcks[c] == nil,
              remoteRefs.isEmpty || remoteRefs[c]?[id] == nil else { return false }
        return store.releaseAtOnce(id, client: c)
    }

    mutating func passThrough(_ c: ClientID, _ rid: UInt64, _ r: StoreRequest, now: UInt64, into out: inout [ClusterAction]) {
        localActions(of: .request(c, requestId: rid, r), for: c, now: now, into: &out)
    }

    // MARK: create

    /// Reserve at the id's home, then allocate here (or on the target, or,
    /// when this node is full, on the reachable peer with the most free).
    mutating func create(_ k: Create, now: UInt64, into out: inout [ClusterAction]) {
        guard k.dataSize >= 0, k.metadataSize >= 0, k.dataSize <= Int.max - k.metadataSize else {
            reply(k.client, k.requestId, .error(.invalidSize(data: k.dataSize, metadata: k.metadataSize)), into: &out)
            return
        }
        if let t = k.target, t != me {
            guard peers[t] != nil else {
                reply(k.client, k.requestId, .error(.nodeUnavailable(t, why: "not a live member of the cluster")), into: &out)
                return
            }
            guard config.reachable.contains(t) else {
                reply(k.client, k.requestId, .error(.nodeUnavailable(t, why: "node \(me) cannot map its memory (reach)")), into: &out)
                return
            }
        }
        if store.location(k.id) != nil { reply(k.client, k.requestId, .error(.alreadyExists(k.id)), into: &out); return }
        let h = home(of: k.id)
        if h == me {
            // A home grants new reservations only in a view it has taken
            // over (SPEC §10.4 "Handoff"); until then the create waits.
            guard takenOver else {
                awaitingTakeover.append((k, now &+ config.requestTimeout))
                noteDeadline(now &+ config.requestTimeout)
                return
            }
            guard directory.reserve(k.id, by: me) else { reply(k.client, k.requestId, .error(.alreadyExists(k.id)), into: &out); return }
            myReservations.insert(k.id)
            reserved(k, now: now, into: &out)
        } else if config.forwardCreate, let t = k.target, t != me {
            // The home hands the reservation on to the owner (SPEC §10.6 "create").
            send(.reserveAllocate(k.id, view: sentView, owner: t, dataSize: k.dataSize, metadataSize: k.metadataSize), to: h,
                 awaiting: .reserveAllocate(k), now: now, into: &out)
        } else {
            send(.reserve(k.id, view: sentView), to: h, awaiting: .reserve(k), now: now, into: &out)
        }
    }

    /// The id is ours: place it.
    mutating func reserved(_ k: Create, now: UInt64, into out: inout [ClusterAction]) {
        myReservations.insert(k.id)
        if let t = k.target, t != me {
            send(.allocate(k.id, dataSize: k.dataSize, metadataSize: k.metadataSize), to: t, awaiting: .allocate(k), now: now, into: &out)
            return
        }
        store.evictOnCreate = k.evict
        let r = runLocal(.create(k.id, dataSize: k.dataSize, metadataSize: k.metadataSize), as: k.client, now: now, into: &out)
        store.evictOnCreate = true
        switch r {
        case .created?:
            localUnsealed[k.client, default: []].insert(k.id)
            reply(k.client, k.requestId, r!, into: &out)
        case .error(let e)? where k.target == nil && k.evict && isOutOfMemory(e):
            if let p = bestPeer(for: k.dataSize + k.metadataSize) {
                var remote = k
                remote.target = p
                send(.allocate(k.id, dataSize: k.dataSize, metadataSize: k.metadataSize), to: p, awaiting: .allocate(remote), now: now, into: &out)
            } else {
                releaseReservation(k.id, now: now, into: &out)
                reply(k.client, k.requestId, r!, into: &out)
            }
        default:
            releaseReservation(k.id, now: now, into: &out)
            reply(k.client, k.requestId, r ?? .error(.unknownClient(k.client)), into: &out)
        }
    }

    func isOutOfMemory(_ e: StoreError) -> Bool {
        if case .outOfMemory = e { return true }
        if case .fragmented = e { return true }
        if case .tooLarge = e { return true }
        return false
    }

    /// The reachable live peer with the most free memory that could hold
    /// `bytes` (as its last heartbeat said).
    func bestPeer(for bytes: Int) -> NodeID? {
        peers.keys.filter { config.reachable.contains($0) && (loads[$0]?.largestFree ?? 0) >= bytes }
            .max { (loads[$0]?.free ?? 0, $1) < (loads[$1]?.free ?? 0, $0) }
    }

    mutating func releaseReservation(_ id: ObjectID, now: UInt64, into out: inout [ClusterAction]) {
        rehomedReservations.remove(id)
        guard myReservations.remove(id) != nil else { return }
        let h = home(of: id)
        if h == me { directory.unreserve(id, by: me) } else { send(.unreserve(id), to: h, now: now, into: &out) }
    }

    /// A peer sealed this node's reservation `id`: its publish took the
    /// entry over. A reservation re-sent to a home after the grant is given
    /// back there too: the owner published to the home of its own view, and
    /// one whose object was deleted before the membership change re-publishes
    /// nothing, which left the re-sent reservation answering `notSealed` for
    /// good (simulator cluster seed 777). Safe: the home grants no new
    /// reservation before it has taken its view over, by when the owner's
    /// re-publication, if any, has arrived; and the owner answered the seal
    /// only after its home acknowledged the publish (SPEC §10.4 "Handoff").
    mutating func sealedElsewhere(_ id: ObjectID, now: UInt64, into out: inout [ClusterAction]) {
        if rehomedReservations.contains(id) { releaseReservation(id, now: now, into: &out) } else { myReservations.remove(id) }
    }

    /// Records a sealed object at its home (and wakes watchers there). For
    /// a client's request the home acknowledges, and the client's replies
    /// wait for it (read-your-writes from any node).
    mutating func publish(_ id: ObjectID, creator: NodeID, location: ObjectLocation, digest: UInt64, for c: ClientID?, now: UInt64,
                          into out: inout [ClusterAction]) {
        if creator == me {
            myReservations.remove(id)
            rehomedReservations.remove(id)
        }
        var l = location
        l.region = 0
        let h = home(of: id)
        if h == me {
            for w in directory.publish(id, owner: me, creator: creator, location: l, digest: digest) {
                published(id, owner: me, location: l, digest: digest, to: w, now: now, into: &out)
            }
        } else {
            if let c { awaitingAcks[c, default: 0] += 1 }
            send(.publish(id, owner: me, creator: creator, location: l, digest: digest, view: sentView), to: h, awaiting: c.map { .ack($0) }, now: now, into: &out)
        }
    }

    mutating func published(_ id: ObjectID, owner: NodeID, location: ObjectLocation, digest: UInt64, to w: NodeID, now: UInt64,
                            into out: inout [ClusterAction]) {
        if w == me { watchFired(id, owner: owner, location: location, digest: digest, now: now, into: &out) } else {
            send(.published(id, owner: owner, location: location, digest: digest), to: w, now: now, into: &out)
        }
    }

    /// The id's entry removed at its home. For a peer's delete
    /// (`answering` its requester and correlation), the home answers the
    /// requester once it is gone (`unpublishFor`, SPEC §10.6 "delete").
    mutating func unpublish(_ id: ObjectID, for c: ClientID?, answering requester: (node: NodeID, correlation: UInt64)? = nil,
                            now: UInt64, into out: inout [ClusterAction]) {
        let h = home(of: id)
        if h == me { directory.unpublish(id, owner: me) } else if let r = requester {
            send(.unpublishFor(id, owner: me, requester: r.node), to: h, correlation: r.correlation, now: now, into: &out)
        } else {
            if let c { awaitingAcks[c, default: 0] += 1 }
            send(.unpublish(id, owner: me), to: h, awaiting: c.map { .ack($0) }, now: now, into: &out)
        }
        for n in peers.keys where loads[n]?.subscribers ?? true { send(.notifyDeleted(id), to: n, now: now, into: &out) }
    }

    /// Peers with subscribers hear of every seal in this node's memory (and
    /// peers whose load is unknown, relayed ones: no heartbeat line says).
    mutating func announceSealed(_ id: ObjectID, location: ObjectLocation, digest: UInt64, now: UInt64, into out: inout [ClusterAction]) {
        for n in peers.keys where loads[n]?.subscribers ?? true {
            send(.notifySealed(id, owner: me, location: location, digest: digest), to: n, now: now, into: &out)
        }
    }

    // MARK: create-and-seal (the daemon writes the bytes)

    mutating func reserveBatch(_ token: UInt64, _ ids: [ObjectID], now: UInt64, into out: inout [ClusterAction]) {
        batches[token] = Batch(client: 0, requestId: 0, ids: ids, results: Array(repeating: nil, count: ids.count), remaining: ids.count)
        if ids.isEmpty { out.append(.batchReserved(token: token, [])); batches[token] = nil; return }
        for (i, id) in ids.enumerated() { reserveBatchItem(token, i, id, deadline: now &+ config.requestTimeout, now: now, into: &out) }
    }

    /// One id of a create-and-seal batch: reserved here (once this home has
    /// taken over its view, SPEC §10.4 "Handoff"; until then it waits) or
    /// at its home.
    mutating func reserveBatchItem(_ token: UInt64, _ i: Int, _ id: ObjectID, deadline: UInt64, now: UInt64, into out: inout [ClusterAction]) {
        guard batches[token] != nil else { return }
        if store.location(id) != nil { batchAnswered(token, i, .alreadyExists(id), into: &out); return }
        let h = home(of: id)
        if h == me {
            if !takenOver {
                awaitingTakeoverBatch.append((token, i, id, deadline))
                noteDeadline(deadline)
            } else if directory.reserve(id, by: me) {
                myReservations.insert(id)
                batchAnswered(token, i, nil, into: &out)
            } else {
                batchAnswered(token, i, .alreadyExists(id), into: &out)
            }
        } else {
            send(.reserve(id, view: sentView), to: h, awaiting: .batchReserve(token: token, index: i, id: id), now: now, into: &out)
        }
    }

    mutating func batchAnswered(_ token: UInt64, _ i: Int, _ e: StoreError?, into out: inout [ClusterAction]) {
        if let done = Self.gathered(&batches, token, i, e) { out.append(.batchReserved(token: token, done.results)) }
    }

    /// Records answer `i` of a gathered request; returns the gather when it
    /// was the last one (and forgets it).
    static func gathered<G: Gathering>(_ table: inout [UInt64: G], _ token: UInt64, _ i: Int, _ v: G.Value) -> G? {
        guard var g = table[token] else { return nil }
        g.results[i] = v
        g.remaining -= 1
        table[token] = g.remaining == 0 ? nil : g
        return g.remaining == 0 ? g : nil
    }

    /// Create-and-seal of one reserved id, done by the shell: create here,
    /// (the shell writes and flushes the bytes), then `sealLocal`.
    public mutating func createLocal(_ c: ClientID, _ id: ObjectID, dataSize: Int, metadataSize: Int, now: UInt64)
        -> (StoreResponse?, [ClusterAction]) {
        var out: [ClusterAction] = []
        let r = runLocal(.create(id, dataSize: dataSize, metadataSize: metadataSize), as: c, now: now, into: &out)
        if case .created = r { localUnsealed[c, default: []].insert(id) } else { releaseReservation(id, now: now, into: &out) }
        return (r, out)
    }

    public mutating func sealLocal(_ c: ClientID, _ id: ObjectID, digest: UInt64, now: UInt64) -> (StoreResponse?, [ClusterAction]) {
        var out: [ClusterAction] = []
        let r = sealHere(c, id, digest: digest, now: now, into: &out)
        return (r, out)
    }

    /// Seals an object in this node's memory, publishes it at its home
    /// (the client's replies wait for the home) and tells subscribers.
    mutating func sealHere(_ c: ClientID, _ id: ObjectID, digest: UInt64, now: UInt64, into out: inout [ClusterAction]) -> StoreResponse? {
        let r = runLocal(.seal(id, digest: digest), as: c, now: now, into: &out)
        if case .sealed = r, let l = store.location(id) {
            localUnsealed[c]?.remove(id)
            publish(id, creator: me, location: l, digest: digest, for: c, now: now, into: &out)
            announceSealed(id, location: l, digest: digest, now: now, into: &out)
        }
        return r
    }

    /// Releases reservations the shell will not use (create failed).
    public mutating func releaseReservations(_ ids: [ObjectID], now: UInt64) -> [ClusterAction] {
        var out: [ClusterAction] = []
        for id in ids { releaseReservation(id, now: now, into: &out) }
        return out
    }

    // MARK: disconnect

    mutating func disconnect(_ c: ClientID, now: UInt64, into out: inout [ClusterAction]) {
        for (id, h) in remoteRefs.removeValue(forKey: c) ?? [:] {
            for _ in 0..<h.count { send(.release(id), to: h.node, now: now, into: &out) }
        }
        for (id, u) in remoteUnsealed.removeValue(forKey: c) ?? [:] {
            // A dead client's dirty lines of the range: written back and
            // dropped here before the abort frees it (SPEC §10.8).
            out.append(.invalidate(u.location))
            send(.abort(id), to: u.node, awaiting: .remoteAbort(0, requestId: 0, id: id), now: now, into: &out)
        }
        awaitingAcks[c] = nil
        held[c] = nil
        awaitingTakeover.removeAll { $0.create.client == c }
        let unsealed = localUnsealed.removeValue(forKey: c) ?? []
        localActions(of: .disconnected(c), now: now, into: &out)
        for id in unsealed where store.location(id) == nil { releaseReservation(id, now: now, into: &out) }
        for (token, g) in gets where g.client == c { dropGet(token, now: now, into: &out) }
        for name in barrierWaiters.keys { barrierWaiters[name]!.removeAll { $0.client == c } }
        deletes = deletes.filter { $0.value.client != c }
        lists = lists.filter { $0.value.client != c }
    }
}
