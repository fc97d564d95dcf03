import PlenumStore

/// Messages from peers (SPEC §10.5): requests this node serves as a home
/// or as an owner, and replies to its own requests. Everything in a message
/// is untrusted: unknown correlations, replies of the wrong kind and
/// requests a node may not make are counted and refused, never trusted.
extension ClusterCore {
    mutating func receive(_ m: PeerMessage, from n: NodeID, correlation corr: UInt64, now: UInt64, into out: inout [ClusterAction]) {
        let pc = Self.pseudoClient(n)
        if m.expectsReply, corr == 0 {
            // A request nobody can be answered for: refused before any effect.
            counters.refusedMessages += 1
            return
        }
        switch m {
        case .hello, .relay:
            break // transport: handled by the shell (links and relays)
        // home: directory
        case .reserve(_, let v), .reserveAllocate(_, let v, _, _, _):
            inView(v, m, from: n, correlation: corr, now: now, into: &out)
        case .unreserve(let id):
            withdrawParked(id, reserve: true, from: n, now: now, into: &out)
            directory.unreserve(id, by: n)
        case .publish(_, let owner, _, _, _, let v):
            guard owner == n else { counters.refusedMessages += 1; return }
            inView(v, m, from: n, correlation: corr, now: now, into: &out)
        case .view(let d):
            senderMoved(n, to: d, now: now, into: &out)
            announcedView(n, epoch: corr, now: now, into: &out)
        case .rehomed(let d):
            peerRehomed(n, d, epoch: corr, now: now, into: &out)
        case .unpublish(let id, let owner):
            guard owner == n else { counters.refusedMessages += 1; return }
            withdrawParked(id, reserve: false, from: n, now: now, into: &out)
            directory.unpublish(id, owner: owner)
            if corr != 0 { acknowledge(n, corr, into: &out) }
        case .unpublishFor(let id, let owner, let requester):
            // The owner carried out `requester`'s delete (SPEC §10.6
            // "delete"): once the entry is gone, the delete is answered.
            guard owner == n, requester != n else { counters.refusedMessages += 1; return }
            withdrawParked(id, reserve: false, from: n, now: now, into: &out)
            directory.unpublish(id, owner: owner)
            if requester == me {
                reply(.result(code: 0), from: n, correlation: corr, now: now, into: &out)
            } else if peers[requester] != nil {
                acknowledge(requester, corr, into: &out)
            }
        case .unwatch(let id):
            directory.unwatch(id, node: n)
        case .lookup(let id, let watch):
            let e = directory.lookup(id, watch: watch ? n : nil)
            answerLookup(n, corr, e, now: now, into: &out)
        case .lookupAcquire(let id, let watch):
            let e = directory.lookup(id, watch: watch ? n : nil)
            // Sealed in memory the reader does not own: the owner grants the
            // reference and answers the reader itself (SPEC §10.6 "get").
            if let e, e.sealed, let owner = e.owner, owner != n {
                if owner == me {
                    grant(id, to: n, correlation: corr, now: now, into: &out)
                    return
                }
                if peers[owner] != nil, let reader = peers[n] {
                    counters.messagesOut += 1
                    out.append(.send(owner, correlation: corr, .acquireFor(id, reader: n, incarnation: reader.incarnation)))
                    return
                }
            }
            answerLookup(n, corr, e, now: now, into: &out)
        case .published(let id, let owner, let l, let digest):
            watchFired(id, owner: owner, location: l, digest: digest, now: now, into: &out)
        // owner: objects in this node's memory, for node n
        case .acquire(let id):
            grant(id, to: n, correlation: corr, now: now, into: &out)
        case .acquireFor(let id, let reader, let inc):
            // A home forwards a reader's lookupAcquire (SPEC §10.6 "get"):
            // the reference is the reader's, and so is the answer — if it is
            // the reader's life this node knows. (A home that took a dead
            // life's request and forwarded it after this node met the new
            // life: the grant would go to the new life, which never asked
            // and could not give it back. Simulator cluster seed 6951.)
            guard reader != me, let info = peers[reader], info.incarnation == inc else { counters.refusedMessages += 1; return }
            grant(id, to: reader, correlation: corr, now: now, into: &out)
        case .release(let id):
            if case .error? = runLocal(.release(id), as: pc, now: now, into: &out) { counters.refusedMessages += 1 }
        case .allocate(let id, let d, let md):
            allocateHere(id, dataSize: d, metadataSize: md, for: n, correlation: corr, now: now, into: &out)
        case .allocateFor(let id, let d, let md, let creator, let inc):
            // A home hands on a reservation it granted (SPEC §10.6 "create"):
            // the allocation is the creator's, and so is the answer — if it
            // is the creator's life this node knows (as for acquireFor).
            guard creator != me, let info = peers[creator], info.incarnation == inc else { counters.refusedMessages += 1; return }
            allocateHere(id, dataSize: d, metadataSize: md, for: creator, correlation: corr, now: now, into: &out)
        case .seal(let id, let digest):
            // Bytes written by node n through the link: drop our stale lines first.
            if store.creator(id) == pc, !store.isSealed(id), let l = store.location(id) { out.append(.invalidate(l)) }
            let r = runLocal(.seal(id, digest: digest), as: pc, now: now, into: &out)
            if case .sealed = r, let l = store.location(id) {
                publish(id, creator: n, location: l, digest: digest, for: pc, now: now, into: &out)
                announceSealed(id, location: l, digest: digest, now: now, into: &out)
            }
            answer(n, corr, .result(code: code(r, id)), now: now, into: &out)
        case .abort(let id):
            answer(n, corr, .result(code: code(runLocal(.abort(id), as: pc, now: now, into: &out), id)), now: now, into: &out)
        case .delete(let id):
            // Deleted here and homed elsewhere: the home answers the
            // requester once it unpublished (SPEC §10.6 "delete"); else (a
            // refusal, or this node is the home) this node answers.
            let forward = config.forwardDelete && home(of: id) != me
            var c: UInt16 = StoreError.notFound(id).peerCode
            var forwarded = false
            let actions = storeActions(.request(pc, requestId: 0, .delete([id])), now: now)
            defer { recycle(actions) }
            for a in actions {
                if case .reply(pc, 0, let r) = a {
                    if case .deleted(let e) = r { c = (e.first ?? nil)?.peerCode ?? 0 }
                } else if forward, case .removed(id) = a {
                    unpublish(id, for: pc, answering: (n, corr), now: now, into: &out)
                    out.append(.local(a))
                    forwarded = true
                } else {
                    absorb(a, for: pc, now: now, into: &out)
                }
            }
            if !forwarded { answer(n, corr, .result(code: c), now: now, into: &out) }
        case .notifySealed(let id, let owner, var l, _):
            guard owner == n, let info = peers[n] else { return }
            l.region = info.region
            for s in store.subscribers { out.append(.local(.notify(s, .sealed(id, l)))) }
        case .notifyDeleted(let id):
            for s in store.subscribers { out.append(.local(.notify(s, .deleted(id)))) }
        case .barrierArrive(let name, let round):
            _ = round
            barrierArrivals[name, default: [:]][0, default: []].insert(n)
            checkBarrier(name, now: now, into: &out)
        case .barrierRelease(let name, let round, let nodes):
            released(name: name, round: round, nodes: Int(nodes), into: &out)
        case .list:
            var rows: [ObjectInfo] = []
            if case .list(let all)? = runLocal(.list, as: pc, now: now, into: &out) { rows = all.filter { $0.state == .sealed } }
            var i = 0
            repeat {
                let chunk = Array(rows[i..<min(rows.count, i + PeerMessage.listRowsPerChunk)])
                i += PeerMessage.listRowsPerChunk
                answer(n, corr, .listChunk(chunk, last: i >= rows.count), now: now, into: &out)
            } while i < rows.count
        // replies
        case .result, .lookupReply, .acquireReply, .allocateReply, .listChunk:
            reply(m, from: n, correlation: corr, now: now, into: &out)
        }
    }

    /// Owner: `id` created for node `n`'s pseudo-client, and the
    /// `allocateReply` to `n` (a failure: all zero, SPEC §10.5).
    mutating func allocateHere(_ id: ObjectID, dataSize d: Int, metadataSize md: Int, for n: NodeID, correlation corr: UInt64, now: UInt64,
                               into out: inout [ClusterAction]) {
        let none = ObjectLocation(offset: 0, dataSize: 0, metadataSize: 0, reserved: 0)
        switch runLocal(.create(id, dataSize: d, metadataSize: md), as: Self.pseudoClient(n), now: now, into: &out) {
        case .created(let l)?:
            // Write back and drop any line of the range this node dirtied
            // in an earlier use, so none can land over the peer's bytes.
            out.append(.invalidate(l))
            answer(n, corr, .allocateReply(code: 0, location: l), now: now, into: &out)
        case .error(let e)?: answer(n, corr, .allocateReply(code: e.peerCode, location: none), now: now, into: &out)
        default: answer(n, corr, .allocateReply(code: StoreError.notFound(id).peerCode, location: none), now: now, into: &out)
        }
    }

    /// The owner `n` answered an allocation for create `k` (asked by this
    /// node, or handed on by the home): the location, checked against
    /// `n`'s region, goes to the client.
    mutating func allocated(_ k: Create, code c: UInt16, location: ObjectLocation, from n: NodeID, now: UInt64, into out: inout [ClusterAction]) {
        var l = location
        guard c == 0 else {
            releaseReservation(k.id, now: now, into: &out)
            reply(k.client, k.requestId, .error(.fromCode(c, id: k.id, node: n)), into: &out)
            return
        }
        guard let info = peers[n], let size = info.regionSize, l.end <= size,
              l.dataSize == k.dataSize, l.metadataSize == k.metadataSize else {
            counters.refusedMessages += 1
            send(.abort(k.id), to: n, awaiting: .ignore, now: now, into: &out)
            releaseReservation(k.id, now: now, into: &out)
            reply(k.client, k.requestId, .error(.nodeUnavailable(n, why: "it answered with an impossible location")), into: &out)
            return
        }
        l.region = info.region
        remoteUnsealed[k.client, default: [:]][k.id] = RemoteUnsealed(node: n, location: l)
        reply(k.client, k.requestId, .created(l), into: &out)
    }

    /// The directory's answer to a lookup.
    mutating func answerLookup(_ n: NodeID, _ corr: UInt64, _ e: Directory.Entry?, now: UInt64, into out: inout [ClusterAction]) {
        let state: DirectoryState = e == nil ? .absent : (e!.sealed ? .sealed : .reserved)
        answer(n, corr, .lookupReply(state, owner: e?.owner ?? 0, location: e?.location ?? ObjectLocation(offset: 0, dataSize: 0, metadataSize: 0, reserved: 0),
                                     digest: e?.digest ?? 0), now: now, into: &out)
    }

    /// Owner: one reference to `id` for node `reader`'s pseudo-client, and
    /// the `acquireReply` to the reader (a failure: all zero, SPEC §10.5).
    mutating func grant(_ id: ObjectID, to reader: NodeID, correlation corr: UInt64, now: UInt64, into out: inout [ClusterAction]) {
        var code: UInt16 = StoreError.notFound(id).peerCode
        var l = ObjectLocation(offset: 0, dataSize: 0, metadataSize: 0, reserved: 0)
        if case .objects(let ls)? = runLocal(.get([id], timeoutMs: 0), as: Self.pseudoClient(reader), now: now, into: &out), let got = ls.first ?? nil {
            code = 0
            l = got
        }
        answer(reader, corr, .acquireReply(code: code, location: l, digest: code == 0 ? store.digest(id) ?? 0 : 0), now: now, into: &out)
    }

    /// A grant that came after its request timed out is given back.
    mutating func undo(_ what: Pending, _ m: PeerMessage, from n: NodeID, asked: NodeID, now: UInt64, into out: inout [ClusterAction]) {
        switch (what, m) {
        case (.acquire(_, _, let id), .acquireReply(0, _, _)), (.lookupAcquire(_, _, let id), .acquireReply(0, _, _)):
            send(.release(id), to: n, now: now, into: &out)
        case (.allocate(let k), .allocateReply(0, _)):
            send(.abort(k.id), to: n, awaiting: .ignore, now: now, into: &out)
        case (.reserveAllocate(let k), .allocateReply(let c, _)):
            // The home granted (perhaps after the unreserve sent when this
            // request failed): the reservation back too, and any allocation.
            if c == 0 { send(.abort(k.id), to: n, awaiting: .ignore, now: now, into: &out) }
            if peers[asked] != nil { send(.unreserve(k.id), to: asked, now: now, into: &out) }
        case (.reserve(let k), .result(0)), (.reserveAllocate(let k), .result(0)): send(.unreserve(k.id), to: n, now: now, into: &out)
        case (.batchReserve(_, _, let id), .result(0)): send(.unreserve(id), to: n, now: now, into: &out)
        default: break
        }
    }

    func code(_ r: StoreResponse?, _ id: ObjectID) -> UInt16 {
        switch r {
        case .error(let e)?: return e.peerCode
        case nil: return StoreError.notFound(id).peerCode
        default: return 0
        }
    }

    /// A home's acknowledgement of a directory update: never held (two
    /// nodes waiting on each other's acknowledgements would deadlock).
    mutating func acknowledge(_ n: NodeID, _ corr: UInt64, into out: inout [ClusterAction]) {
        counters.messagesOut += 1
        out.append(.send(n, correlation: corr, .result(code: 0)))
    }

    /// Answers a peer's request (held behind that peer's unacknowledged
    /// directory updates, like a local client's reply).
    mutating func answer(_ n: NodeID, _ corr: UInt64, _ m: PeerMessage, now: UInt64, into out: inout [ClusterAction]) {
        guard corr != 0 else { counters.refusedMessages += 1; return }
        counters.messagesOut += 1
        emit(.send(n, correlation: corr, m), for: Self.pseudoClient(n), into: &out)
    }

    /// A reply to one of this node's requests.
    mutating func reply(_ m: PeerMessage, from n: NodeID, correlation corr: UInt64, now: UInt64, into out: inout [ClusterAction]) {
        // The answer to a lookupAcquire may come from the owner the home
        // forwarded it to (SPEC §10.6 "get"), the answer to a delete from
        // the id's home in the owner's view (SPEC §10.6 "delete"); every
        // other reply comes from
        // the node asked.
        func answers(_ o: Outstanding) -> Bool {
            if o.node == n { return true }
            if case .lookupAcquire = o.what, case .acquireReply = m { return true }
            if case .remoteDelete = o.what, case .result = m { return true }
            if case .reserveAllocate(let k) = o.what, case .allocateReply = m, k.target == n { return true }
            return false
        }
        guard let o = outstanding[corr], answers(o) else {
            counters.unexpectedReplies += 1
            if let late = expired[corr], answers(late) {
                expired[corr] = nil
                undo(late.what, m, from: n, asked: late.node, now: now, into: &out)
            }
            return
        }
        if case .listChunk(_, let last) = m, !last {} else { outstanding[corr] = nil }
        switch (o.what, m) {
        case (.reserve(let k), .result(let c)):
            if c == 0, o.view != view {
                // Granted in a view this node has left: the new home may not
                // know it (SPEC §10.4 "Handoff"). Give it back; the client retries.
                send(.unreserve(k.id), to: n, now: now, into: &out)
                reply(k.client, k.requestId, .error(.nodeUnavailable(n, why: "membership changed while reserving; retry")), into: &out)
            } else if c == 0 { reserved(k, now: now, into: &out) } else {
                reply(k.client, k.requestId, .error(.fromCode(c, id: k.id, node: n)), into: &out)
            }
        case (.batchReserve(let token, let i, let id), .result(let c)):
            guard batches[token] != nil else {
                // The batch is gone: give the id back.
                if c == 0 { send(.unreserve(id), to: n, now: now, into: &out) }
                return
            }
            if c == 0, o.view != view {
                send(.unreserve(id), to: n, now: now, into: &out)
                batchAnswered(token, i, .nodeUnavailable(n, why: "membership changed while reserving; retry"), into: &out)
                return
            }
            if c == 0 { myReservations.insert(id) }
            batchAnswered(token, i, c == 0 ? nil : .fromCode(c, id: id, node: n), into: &out)
        case (.reserveAllocate(let k), .result(let c)):
            // The home refused, or granted without handing on.
            if c == 0, o.view != view {
                send(.unreserve(k.id), to: n, now: now, into: &out)
                reply(k.client, k.requestId, .error(.nodeUnavailable(n, why: "membership changed while reserving; retry")), into: &out)
            } else if c == 0 { reserved(k, now: now, into: &out) } else {
                reply(k.client, k.requestId, .error(.fromCode(c, id: k.id, node: n)), into: &out)
            }
        case (.reserveAllocate(let k), .allocateReply(let c, let l)):
            // The home granted and handed on; `n`, the owner, answers.
            if o.view != view {
                if c == 0 { send(.abort(k.id), to: n, awaiting: .ignore, now: now, into: &out) }
                send(.unreserve(k.id), to: o.node, now: now, into: &out)
                reply(k.client, k.requestId, .error(.nodeUnavailable(o.node, why: "membership changed while reserving; retry")), into: &out)
                return
            }
            myReservations.insert(k.id)
            allocated(k, code: c, location: l, from: n, now: now, into: &out)
        case (.allocate(let k), .allocateReply(let c, let l)):
            allocated(k, code: c, location: l, from: n, now: now, into: &out)
        case (.lookup(let token, let i), .lookupReply(let s, let owner, let l, let d)),
             (.lookupAcquire(let token, let i, _), .lookupReply(let s, let owner, let l, let d)):
            lookedUp(token, i, s, owner: owner, location: l, digest: d, now: now, into: &out)
        case (.lookupAcquire(let token, let i, let id), .acquireReply(let c, let l, let d)):
            acquired(token, i, id, from: n, code: c, location: l, digest: d, now: now, into: &out)
        case (.contains(let c, let rid), .lookupReply(let s, _, _, _)):
            reply(c, rid, .contains(s == .sealed), into: &out)
        case (.deleteLookup(let token, let i), .lookupReply(let s, let owner, let l, let d)):
            guard let id = deletes[token]?.ids[i] else { return }
            let e: Directory.Entry? = s == .absent ? nil : Directory.Entry(reservedBy: owner, owner: s == .sealed ? owner : nil, location: l, digest: d)
            deleteAt(e, token, i, id, now: now, into: &out)
        case (.acquire(let token, let i, let id), .acquireReply(let c, let l, let d)):
            acquired(token, i, id, from: n, code: c, location: l, digest: d, now: now, into: &out)
        case (.remoteSeal(let c, let rid, let id), .result(let code)):
            if code == 0 {
                remoteUnsealed[c]?[id] = nil
                sealedElsewhere(id, now: now, into: &out)
                reply(c, rid, .sealed, into: &out)
            } else {
                reply(c, rid, .error(.fromCode(code, id: id, node: n)), into: &out)
            }
        case (.remoteAbort(let c, let rid, let id), .result(let code)):
            // A departed client's abort (c = 0) ends its reservation whatever
            // the owner says: nobody else will seal or abort it.
            if code == 0 || c == 0 {
                remoteUnsealed[c]?[id] = nil
                releaseReservation(id, now: now, into: &out)
            }
            if c != 0 { reply(c, rid, code == 0 ? .aborted : .error(.fromCode(code, id: id, node: n)), into: &out) }
        case (.remoteDelete(let token, let i, _), .result(let code)):
            guard let id = deletes[token]?.ids[i] else { return }
            deleteAnswered(token, i, code == 0 ? nil : .fromCode(code, id: id, node: n), into: &out)
        case (.list(let token), .listChunk(var rows, let last)):
            let region = peers[n]?.region ?? 0
            for k in rows.indices { rows[k].location.region = region }
            listChunk(token, rows, last: last, into: &out)
        case (.ack(let c), .result):
            acknowledged(c, into: &out)
        case (.ignore, _):
            break
        default:
            counters.unexpectedReplies += 1
            // A reply of the wrong kind: fail the request it claimed to answer.
            fail(o, why: "it answered with the wrong message", now: now, into: &out)
        }
    }
}
