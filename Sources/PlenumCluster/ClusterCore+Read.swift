import PlenumStore

/// Gets, deletes and lists that span nodes (SPEC §10.6): at most one
/// round trip to the id's home and one to its owner per id, whatever N.
extension ClusterCore {
    mutating func get(_ c: ClientID, _ rid: UInt64, _ ids: [ObjectID], timeoutMs: Int64, now: UInt64, into out: inout [ClusterAction]) {
        // Every id in this node's memory (sealed or being created here):
        // the single-node path, blocking semantics included.
        if ids.count > store.config.maxIdsPerRequest || ids.allSatisfy({ store.location($0) != nil }) {
            passThrough(c, rid, .get(ids, timeoutMs: timeoutMs), now: now, into: &out)
            return
        }
        if timeoutMs != 0 {
            let waiting = waitingIds[c, default: 0] + ids.count
            guard waiting <= store.config.maxWaitingIdsPerClient else {
                reply(c, rid, .error(.tooManyWaiting(waiting, limit: store.config.maxWaitingIdsPerClient)), into: &out)
                return
            }
            waitingIds[c] = waiting
        }
        let token = nextCorrelation
        nextCorrelation &+= 1
        // A poll (timeout 0) has no deadline: it ends when every id is answered.
        let deadline: UInt64? = timeoutMs <= 0 ? nil : StoreCore.deadline(now: now, timeoutMs: timeoutMs)
        gets[token] = Get(client: c, requestId: rid, ids: ids, results: Array(repeating: nil, count: ids.count),
                          open: Set(ids.indices), deadline: deadline, watch: timeoutMs != 0)
        if let deadline { noteDeadline(deadline) }
        for (i, id) in ids.enumerated() {
            if store.isSealed(id) {
                takeLocal(token, i, id, now: now, into: &out)
                continue
            }
            let h = home(of: id)
            if h == me {
                let e = directory.lookup(id, watch: timeoutMs != 0 ? me : nil)
                if let e, let owner = e.owner, let l = e.location {
                    watchFired(id, owner: owner, location: l, digest: e.digest, only: (token, i), now: now, into: &out)
                } else if timeoutMs != 0 {
                    watching[id, default: []].append((token, i))
                } else {
                    resolve(token, i, nil, now: now, into: &out)
                }
            } else if let a = peek(id, at: h), peeked(a, token, i, id, watch: timeoutMs != 0, now: now, into: &out) {
                usedPeek()
                continue
            } else {
                if timeoutMs != 0 { watching[id, default: []].append((token, i)) }
                if config.forwardAcquire {
                    send(.lookupAcquire(id, watch: timeoutMs != 0), to: h, awaiting: .lookupAcquire(get: token, index: i, id: id), now: now, into: &out)
                } else {
                    send(.lookup(id, watch: timeoutMs != 0), to: h, awaiting: .lookup(get: token, index: i), now: now, into: &out)
                }
            }
        }
        if gets[token] != nil, timeoutMs == 0, gets[token]!.open.isEmpty { finishGet(token, now: now, into: &out) }
    }

    /// The home's index answered for `id` (SPEC §10.6 "get"): sealed at a
    /// live peer whose memory is mapped here — acquire there at once; not
    /// sealed and not waiting — not found. Anything else (the owner is this
    /// node or not live, or a wait needs the home's watch): false, ask the home.
    mutating func peeked(_ a: IndexAnswer, _ token: UInt64, _ i: Int, _ id: ObjectID, watch: Bool,
                         now: UInt64, into out: inout [ClusterAction]) -> Bool {
        switch a {
        case .sealed(let owner):
            guard owner != me, peers[owner]?.regionSize != nil else { askedAfterPeek(); return false }
            send(.acquire(id), to: owner, awaiting: .acquire(get: token, index: i, id: id), now: now, into: &out)
            return true
        case .absent, .reserved:
            guard !watch else { askedAfterPeek(); return false }
            resolve(token, i, nil, now: now, into: &out)
            return true
        }
    }

    /// A reference through the local store (the object lives here).
    mutating func takeLocal(_ token: UInt64, _ i: Int, _ id: ObjectID, now: UInt64, into out: inout [ClusterAction]) {
        guard let g = gets[token] else { return }
        var l: ObjectLocation?
        if case .objects(let ls)? = runLocal(.get([id], timeoutMs: 0), as: g.client, now: now, into: &out) { l = ls.first ?? nil }
        resolve(token, i, l, now: now, into: &out)
    }

    /// The directory answered (lookup reply or a fired watch): acquire from the owner.
    mutating func lookedUp(_ token: UInt64, _ i: Int, _ state: DirectoryState, owner: NodeID, location: ObjectLocation, digest: UInt64,
                           now: UInt64, into out: inout [ClusterAction]) {
        guard let g = gets[token], g.open.contains(i) else { return }
        let id = g.ids[i]
        if state == .sealed {
            // Every get of this node waiting for the id goes on, not just this one.
            let waiting = watching[id]?.contains { $0 == (token, i) } == true
            watchFired(id, owner: owner, location: location, digest: digest, only: waiting ? nil : (token, i), now: now, into: &out)
        } else if !g.watch {
            resolve(token, i, nil, now: now, into: &out)
        }
        // Otherwise the home keeps a watch and sends `published` later.
    }

    /// `id` is sealed at `owner`: every get waiting for it (or just `only`) acquires it.
    mutating func watchFired(_ id: ObjectID, owner: NodeID, location: ObjectLocation, digest: UInt64,
                             only: (UInt64, Int)? = nil, now: UInt64, into out: inout [ClusterAction]) {
        var targets: [(get: UInt64, index: Int)] = []
        if let only {
            targets = [only]
            watching[id]?.removeAll { $0 == only }
        } else {
            targets = watching.removeValue(forKey: id) ?? []
        }
        if watching[id]?.isEmpty == true { watching[id] = nil }
        for (token, i) in targets {
            guard gets[token]?.open.contains(i) == true else { continue }
            if owner == me {
                takeLocal(token, i, id, now: now, into: &out)
            } else if peers[owner] == nil || peers[owner]?.regionSize == nil {
                // Dead, or its memory is not mapped here: nothing to read zero-copy.
                resolve(token, i, nil, now: now, into: &out)
            } else {
                send(.acquire(id), to: owner, awaiting: .acquire(get: token, index: i, id: id), now: now, into: &out)
            }
        }
    }

    /// The owner granted a reference: check the bytes before handing them out.
    mutating func acquired(_ token: UInt64, _ i: Int, _ id: ObjectID, from n: NodeID, code: UInt16, location: ObjectLocation,
                           digest: UInt64, now: UInt64, into out: inout [ClusterAction]) {
        guard code == 0 else { resolve(token, i, nil, now: now, into: &out); return }
        guard gets[token]?.open.contains(i) == true, let info = peers[n], let size = info.regionSize,
              location.end <= size, location.reserved >= location.dataSize + location.metadataSize else {
            // Late (the get finished), or a location outside the peer's region: give it back.
            if peers[n] != nil { send(.release(id), to: n, now: now, into: &out) }
            if let size = peers[n]?.regionSize, location.end > size { counters.refusedMessages += 1 }
            resolve(token, i, nil, now: now, into: &out)
            return
        }
        var l = location
        l.region = info.region
        let check = nextCorrelation
        nextCorrelation &+= 1
        digestChecks[check] = (token, i, n, id, l, digest)
        out.append(.checkDigest(token: check, region: info.region, location: l, digest: digest))
    }

    mutating func digestChecked(_ check: UInt64, ok: Bool, now: UInt64, into out: inout [ClusterAction]) {
        guard let d = digestChecks.removeValue(forKey: check) else { return }
        guard ok, let g = gets[d.get], g.open.contains(d.index), peers[d.node] != nil else {
            if !ok { counters.digestMismatches += 1 }
            if peers[d.node] != nil { send(.release(d.id), to: d.node, now: now, into: &out) }
            resolve(d.get, d.index, nil, now: now, into: &out)
            return
        }
        let held = remoteRefs[g.client]?[d.id]?.count ?? 0
        remoteRefs[g.client, default: [:]][d.id] = Held(node: d.node, count: held + 1, location: d.location, digest: d.digest)
        resolve(d.get, d.index, d.location, now: now, into: &out)
    }

    mutating func resolve(_ token: UInt64, _ i: Int, _ l: ObjectLocation?, now: UInt64, into out: inout [ClusterAction]) {
        guard var g = gets[token], g.open.remove(i) != nil else { return }
        let id = g.ids[i]
        watching[id]?.removeAll { $0 == (token, i) }
        if watching[id]?.isEmpty == true { watching[id] = nil }
        g.results[i] = l
        gets[token] = g
        if g.open.isEmpty { finishGet(token, now: now, into: &out) }
    }

    /// All answered, or the deadline passed: reply with what was found.
    mutating func finishGet(_ token: UInt64, now: UInt64, into out: inout [ClusterAction]) {
        guard let g = dropGet(token, now: now, into: &out) else { return }
        reply(g.client, g.requestId, .objects(g.results), into: &out)
    }

    /// Forgets a get; watches nobody here needs any more are dropped at
    /// their homes.
    @discardableResult
    mutating func dropGet(_ token: UInt64, now: UInt64, into out: inout [ClusterAction]) -> Get? {
        guard let g = gets.removeValue(forKey: token) else { return nil }
        if g.watch {
            let left = waitingIds[g.client, default: 0] - g.ids.count
            waitingIds[g.client] = left > 0 ? left : nil
        }
        unwatch(token, g)
        if g.watch {
            for i in g.open where watching[g.ids[i]] == nil {
                let h = home(of: g.ids[i])
                if h == me { directory.unwatch(g.ids[i], node: me) } else { send(.unwatch(g.ids[i]), to: h, now: now, into: &out) }
            }
        }
        return g
    }

    mutating func unwatch(_ token: UInt64, _ g: Get) {
        for i in g.open {
            watching[g.ids[i]]?.removeAll { $0.get == token }
            if watching[g.ids[i]]?.isEmpty == true { watching[g.ids[i]] = nil }
        }
    }

    // MARK: delete

    mutating func delete(_ c: ClientID, _ rid: UInt64, _ ids: [ObjectID], now: UInt64, into out: inout [ClusterAction]) {
        if ids.count > store.config.maxIdsPerRequest || ids.allSatisfy({ store.location($0) != nil }) {
            passThrough(c, rid, .delete(ids), now: now, into: &out)
            return
        }
        let token = nextCorrelation
        nextCorrelation &+= 1
        deletes[token] = Gather(client: c, requestId: rid, ids: ids, results: Array(repeating: nil, count: ids.count), remaining: ids.count)
        for (i, id) in ids.enumerated() {
            if store.location(id) != nil {
                var e: StoreError?
                if case .deleted(let r)? = runLocal(.delete([id]), as: c, now: now, into: &out) { e = r.first ?? nil }
                deleteAnswered(token, i, e, into: &out)
                continue
            }
            let h = home(of: id)
            if h == me {
                deleteAt(directory.lookup(id, watch: nil), token, i, id, now: now, into: &out)
            } else if let a = peek(id, at: h) {
                // The index answered: straight to the owner (SPEC §10.6 "delete").
                usedPeek()
                switch a {
                case .absent: deleteAnswered(token, i, .notFound(id), into: &out)
                case .reserved: deleteAnswered(token, i, .notSealed(id), into: &out)
                case .sealed(let owner): deleteAt(Directory.Entry(reservedBy: owner, owner: owner), token, i, id, now: now, into: &out)
                }
            } else {
                send(.lookup(id, watch: false), to: h, awaiting: .deleteLookup(token: token, index: i), now: now, into: &out)
            }
        }
    }

    /// Checked remote free (SPEC §10.6): the owner decides.
    mutating func deleteAt(_ e: Directory.Entry?, _ token: UInt64, _ i: Int, _ id: ObjectID, now: UInt64, into out: inout [ClusterAction]) {
        guard let e else { deleteAnswered(token, i, .notFound(id), into: &out); return }
        guard let owner = e.owner else { deleteAnswered(token, i, .notSealed(id), into: &out); return }
        if owner == me {
            var err: StoreError?
            if case .deleted(let r)? = runLocal(.delete([id]), as: deletes[token]?.client ?? 0, now: now, into: &out) { err = r.first ?? nil }
            deleteAnswered(token, i, err, into: &out)
        } else if peers[owner] == nil {
            deleteAnswered(token, i, .nodeUnavailable(owner, why: "not live"), into: &out)
        } else {
            send(.delete(id), to: owner, awaiting: .remoteDelete(token: token, index: i, home: home(of: id)), now: now, into: &out)
        }
    }

    mutating func deleteAnswered(_ token: UInt64, _ i: Int, _ e: StoreError?, into out: inout [ClusterAction]) {
        if let g = Self.gathered(&deletes, token, i, e) { reply(g.client, g.requestId, .deleted(g.results), into: &out) }
    }

    // MARK: list

    mutating func list(_ c: ClientID, _ rid: UInt64, now: UInt64, into out: inout [ClusterAction]) {
        guard case .list(let mine)? = runLocal(.list, as: c, now: now, into: &out) else { return }
        let token = nextCorrelation
        nextCorrelation &+= 1
        lists[token] = Gather(client: c, requestId: rid, results: mine, remaining: peers.count)
        for n in peers.keys { send(.list, to: n, awaiting: .list(token: token), now: now, into: &out) }
        if peers.isEmpty { listChunk(token, [], last: true, remainingOverride: 0, into: &out) }
    }

    mutating func listChunk(_ token: UInt64, _ rows: [ObjectInfo], last: Bool, remainingOverride: Int? = nil, into out: inout [ClusterAction]) {
        guard var g = lists[token] else { return }
        g.results += rows
        if last { g.remaining -= 1 }
        if let r = remainingOverride { g.remaining = r }
        if g.remaining <= 0 {
            lists[token] = nil
            reply(g.client, g.requestId, .list(g.results.sorted { $0.id < $1.id }), into: &out)
        } else {
            lists[token] = g
        }
    }
}
