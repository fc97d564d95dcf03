import PlenumStore

/// Requests to peers that cannot complete (SPEC §10.5, §10.10): a peer that
/// does not answer in time, or dies (`peerDown`); what each kind of request
/// answers its client then.
extension ClusterCore {
    /// A request that failed, kept a while (bounded) so a grant answering
    /// it later is given back (`undo`).
    mutating func keepForLateAnswers(_ corr: UInt64, _ o: Outstanding) {
        if expired.count >= 4096 { expired.removeAll() }
        expired[corr] = o
    }

    /// Fails requests whose peer did not answer in time.
    mutating func expire(now: UInt64, into out: inout [ClusterAction]) {
        guard now >= expiryScanAt else { return }
        for (corr, o) in outstanding where o.deadline <= now {
            outstanding[corr] = nil
            keepForLateAnswers(corr, o)
            counters.peerTimeouts += 1
            fail(o, why: "no answer within \(config.requestTimeout / 1_000_000) ms", now: now, into: &out)
        }
        for (token, g) in gets {
            if let d = g.deadline, d <= now { finishGet(token, now: now, into: &out) }
        }
        expireTakeover(now: now, into: &out)
        // What is left (and whatever the failures above sent) sets the next scan.
        var next = UInt64.max
        for o in outstanding.values { next = min(next, o.deadline) }
        for g in gets.values { if let d = g.deadline { next = min(next, d) } }
        for w in awaitingTakeover { next = min(next, w.deadline) }
        for b in awaitingTakeoverBatch { next = min(next, b.deadline) }
        expiryScanAt = next
    }

    /// A deadline was set: `expire` must scan by then.
    @inline(__always)
    mutating func noteDeadline(_ d: UInt64) { expiryScanAt = min(expiryScanAt, d) }

    /// What to do when a request to a peer cannot complete.
    mutating func fail(_ o: Outstanding, why: String, now: UInt64, into out: inout [ClusterAction]) {
        let err = StoreError.nodeUnavailable(o.node, why: why)
        switch o.what {
        case .reserve(let c), .allocate(let c):
            if case .allocate = o.what { releaseReservation(c.id, now: now, into: &out) }
            reply(c.client, c.requestId, .error(err), into: &out)
        case .reserveAllocate(let c):
            // The home may hold the reservation (granted, handed on, the
            // owner silent): given back (an unreserve of what the home does
            // not hold for this node changes nothing).
            if peers[o.node] != nil { send(.unreserve(c.id), to: o.node, now: now, into: &out) }
            reply(c.client, c.requestId, .error(err), into: &out)
        case .batchReserve(let token, let i, _): batchAnswered(token, i, err, into: &out)
        case .lookup(let g, let i), .lookupAcquire(let g, let i, _): resolve(g, i, nil, now: now, into: &out)
        case .contains(let c, let rid): reply(c, rid, .error(err), into: &out)
        case .deleteLookup(let t, let i), .remoteDelete(let t, let i, _): deleteAnswered(t, i, err, into: &out)
        case .acquire(let g, let i, _): resolve(g, i, nil, now: now, into: &out)
        case .remoteSeal(let c, let rid, _):
            if c != 0 { reply(c, rid, .error(err), into: &out) }
        case .remoteAbort(let c, let rid, let id):
            // A departed client's abort (c = 0): its object went with a dead
            // owner, or the owner aborts it when the abort arrives; either
            // way the reservation is given back, or it would be re-sent to
            // every new home for good (simulator cluster seed 4314).
            if c == 0 { releaseReservation(id, now: now, into: &out) } else { reply(c, rid, .error(err), into: &out) }
        case .list(let t): listChunk(t, [], last: true, into: &out)
        case .ack(let c): acknowledged(c, into: &out)   // the new home gets it on re-publish
        case .ignore: break
        }
    }
}
