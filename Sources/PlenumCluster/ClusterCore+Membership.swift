import PlenumStore

/// Membership (SPEC §10.4, §10.10 item 8): peers come up and go down, and
/// every change re-homes what this node holds (§10.4 "Re-homing").
extension ClusterCore {
    mutating func peerUp(_ n: NodeID, _ info: PeerInfo, now: UInt64, into out: inout [ClusterAction]) {
        guard n != me else { return }
        if let old = peers[n] {
            if old == info { return }
            peerDown(n, why: "restarted (incarnation \(old.incarnation) → \(info.incarnation))", now: now, into: &out)
        }
        peers[n] = info
        unresolved.remove(n)
        counters.joins += 1
        _ = store.handle(.connected(Self.pseudoClient(n)), now: now)
        membershipChanged(now: now, into: &out)
    }

    mutating func peerDown(_ n: NodeID, why: String, now: UInt64, into out: inout [ClusterAction]) {
        guard peers.removeValue(forKey: n) != nil else { resolved(n, now: now, into: &out); return }
        unresolved.remove(n)
        loads[n] = nil
        counters.deaths += 1
        // Its references and unsealed creations here: dropped and aborted.
        localActions(of: .disconnected(Self.pseudoClient(n)), now: now, into: &out)
        awaitingAcks[Self.pseudoClient(n)] = nil
        held[Self.pseudoClient(n)] = nil
        directory.drop(node: n)
        parked[n] = nil
        rehomedBy[n] = nil
        announced[n] = nil
        // Objects in its memory are gone for local holders.
        for c in remoteRefs.keys { remoteRefs[c] = remoteRefs[c]!.filter { $0.value.node != n } }
        for c in remoteUnsealed.keys {
            for (id, u) in remoteUnsealed[c]! where u.node == n {
                remoteUnsealed[c]![id] = nil
                releaseReservation(id, now: now, into: &out)
            }
        }
        for (corr, var o) in outstanding where o.node == n || o.what.forwardedVia == n {
            outstanding[corr] = nil
            if case .remoteDelete = o.what { o.node = n }   // the error names the node that died
            // An owner the home handed a get or a create on to may still
            // answer after the home died: kept a while, so a late grant or
            // allocation is given back (simulator cluster seed 78740).
            if o.what.grantedElsewhere { keepForLateAnswers(corr, o) }
            fail(o, why: o.node == n ? why : "node \(n), the owner: \(why)", now: now, into: &out)
        }
        for b in barrierArrivals.keys { barrierArrivals[b] = barrierArrivals[b]!.mapValues { $0.subtracting([n]) } }
        membershipChanged(now: now, into: &out)
    }

    /// Homes moved: keep only the entries homed here, re-publish every local
    /// sealed object and re-send every reservation to its (new) home, and
    /// re-send barrier arrivals to their coordinators.
    mutating func membershipChanged(now: UInt64, into out: inout [ClusterAction]) {
        enterView(now: now, into: &out)
        let nodes = live, me = self.me
        directory.keep { Home.of($0, among: nodes) == me }
        resend(toward: nil, now: now, into: &out)
        for (name, round) in barrierArrived { arrive(name: name, round: round, now: now, into: &out) }
        for name in barrierArrivals.keys { checkBarrier(name, now: now, into: &out) }
        rehomed(now: now, into: &out)
    }

    /// Re-homing (SPEC §10.4): this node's sealed objects re-published,
    /// its reservations re-sent and its blocking gets' watches re-placed, at
    /// their homes in its view — every home (`target` nil: its own view
    /// changed), or those homed at `target` (`target` announced a view: it
    /// may have dropped them when it left the view they were sent in).
    mutating func resend(toward target: NodeID?, now: UInt64, into out: inout [ClusterAction]) {
        let me = self.me
        for (id, location, digest) in store.sealedObjects where target == nil || home(of: id) == target {
            let creator = store.creator(id).map { $0 & Self.peerBit != 0 ? NodeID(truncatingIfNeeded: $0) : me } ?? me
            publish(id, creator: creator, location: location, digest: digest, for: nil, now: now, into: &out)
        }
        for id in myReservations {
            let h = home(of: id)
            guard target == nil || h == target else { continue }
            // One-way: a re-homing reserve (correlation 0), which a home
            // serves before new ones (SPEC §10.4 "Handoff").
            if h == me { _ = directory.reserve(id, by: me) } else { send(.reserve(id, view: sentView), to: h, now: now, into: &out) }
            rehomedReservations.insert(id)
        }
        // Blocking gets keep their watch at the id's (new) home.
        for (id, waiters) in watching {
            guard let first = waiters.first else { continue }
            let h = home(of: id)
            guard target == nil || h == target else { continue }
            if h == me {
                if let e = directory.lookup(id, watch: me), let owner = e.owner, let l = e.location {
                    watchFired(id, owner: owner, location: l, digest: e.digest, now: now, into: &out)
                }
            } else {
                send(.lookup(id, watch: true), to: h, awaiting: .lookup(get: first.get, index: first.index), now: now, into: &out)
            }
        }
    }
}
