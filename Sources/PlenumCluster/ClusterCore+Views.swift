import PlenumStore

/// Views (SPEC §10.4 "Views"): the live set a node computes homes in, named
/// by a digest of its members and their incarnations. Reserves and
/// publishes carry the sender's view; a home serves them only in that same
/// view. One from another view is parked: served once this node moves to
/// that view, dropped once its sender says (`view`) it moved on — the
/// sender re-sends what still matters after every change of its own view
/// (§10.4 "Re-homing"), so nothing a stale view sent survives it.
///
/// ```
///  sender in v ── reserve/publish(v) ──▶ home in v ? serve
///                                                  : park ─┬─ home moves to v   ─▶ serve
///                                                          ├─ sender says view(w≠v) ─▶ drop (reserve: "retry"; publish: ack)
///                                                          └─ sender dies        ─▶ drop
/// ```
/// Handoff (SPEC §10.4 "Handoff"): every node ends its re-homing in a view
/// with `rehomed(v)` to every peer; a home serves reserves (and its own
/// clients' creates of ids homed here) only once every peer's last
/// `rehomed` carried its view, re-homing reserves before new ones.
extension ClusterCore {
    /// A reserve or publish waiting at a home: for the home to enter its
    /// view, or (a new reserve) for the home to take that view over.
    struct Parked: Sendable {
        var corr: UInt64
        var message: PeerMessage
        var view: UInt64
        /// A new reserve (with a correlation), not a re-homing one: served
        /// after every re-homing one at the takeover.
        var fresh: Bool
    }

    /// Messages a home parks per sender at most; beyond, a reserve is
    /// refused ("retry") and a publish dropped (counted as refused).
    static let maxParked = 65_536

    /// splitmix64 over (node + 1, incarnation) of every live node in
    /// ascending node id (SPEC §10.4 "Views").
    public static func viewDigest(_ members: [(node: NodeID, incarnation: UInt64)]) -> UInt64 {
        var v: UInt64 = 0
        for m in members.sorted(by: { $0.node < $1.node }) {
            v = Home.mix(v ^ (UInt64(m.node) &+ 1))
            v = Home.mix(v ^ m.incarnation)
        }
        return v
    }

    /// This node's view now (never 0, which means "no view").
    var currentView: UInt64 {
        let v = Self.viewDigest([(me, config.incarnation)] + peers.map { ($0.key, $0.value.incarnation) })
        return v == 0 ? 1 : v
    }

    /// The view a reserve or publish carries: 0 with views off.
    var sentView: UInt64 { config.views ? view : 0 }

    /// Messages parked for a view this node is not in.
    public var parkedCount: Int { parked.values.reduce(0) { $0 + $1.count } }

    /// A reserve or publish from `n` in view `v`: served now, or parked.
    mutating func inView(_ v: UInt64, _ m: PeerMessage, from n: NodeID, correlation corr: UInt64, now: UInt64,
                         into out: inout [ClusterAction]) {
        // A reserve waits for the takeover. A re-homing one (a reservation
        // its sender already holds: one-way, correlation 0) is served first
        // when the takeover comes, so no new reserve (with a correlation: a
        // client waits) can take its id. (Telling them apart by arrival
        // before or after the sender's `rehomed` failed once views had
        // epochs: simulator cluster seed 87416.)
        var reserve = false, fresh = false
        if m.isReserve { reserve = true; fresh = corr != 0 }
        if v == 0 || (v == view && (!reserve || takenOver)) { serve(m, from: n, correlation: corr, now: now, into: &out); return }
        guard parked[n, default: []].count < Self.maxParked else {
            counters.refusedMessages += 1
            superseded(m, from: n, correlation: corr, now: now, into: &out)
            return
        }
        parked[n, default: []].append(Parked(corr: corr, message: m, view: v, fresh: fresh))
    }

    // MARK: handoff (SPEC §10.4 "Handoff")

    /// Every live peer has said it finished re-homing in this node's view:
    /// every entry homed here in this view has reached this node (FIFO
    /// links: the re-publications and re-sent reservations came first), so
    /// a new reservation can be judged. Always true with views off.
    public var takenOver: Bool {
        guard config.views else { return true }
        guard unresolved.isEmpty else { return false }
        for n in peers.keys where rehomedBy[n] != view { return false }
        return true
    }

    /// `view(d)` from `n` with its epoch: `n` entered a view and dropped the
    /// entries no longer homed there — perhaps ones this node published
    /// while `n` was last in `d` (a view digest recurs: `n` left it and came
    /// back, while this node never moved, simulator cluster seed 14284). So
    /// this node re-homes toward `n` and answers with `rehomed` echoing the
    /// epoch (SPEC §10.4 "Handoff").
    mutating func announcedView(_ n: NodeID, epoch: UInt64, now: UInt64, into out: inout [ClusterAction]) {
        guard config.views, peers[n] != nil else { return }
        announced[n] = epoch
        resend(toward: n, now: now, into: &out)
        send(.rehomed(view), to: n, correlation: epoch, now: now, into: &out)
    }

    /// A peer this node waited for at its start came up, died or proved
    /// absent: once none is left, what waited for the takeover goes on.
    mutating func resolved(_ n: NodeID, now: UInt64, into out: inout [ClusterAction]) {
        guard unresolved.remove(n) != nil, takenOver else { return }
        tookOver(now: now, into: &out)
    }

    /// The end of this node's re-homing in its view: tell every live peer
    /// (after everything re-homing sent it), then serve what waited.
    mutating func rehomed(now: UInt64, into out: inout [ClusterAction]) {
        if config.views {
            for n in peers.keys.sorted() { send(.rehomed(view), to: n, correlation: announced[n] ?? 0, now: now, into: &out) }
        }
        tookOver(now: now, into: &out)
    }

    /// `rehomed(d)` from `n`, echoing the epoch of the last announcement of
    /// this node's it had. It counts only for this node's view and epoch:
    /// then everything `n` keeps homed here in `d` has arrived since this
    /// node entered it. One of this view echoing an older epoch (`n` did not
    /// have the announcement: a relayed pair comes up one side at a time,
    /// and a message to a peer not up is dropped) gets the announcement
    /// again, once per epoch, so `n` answers it.
    mutating func peerRehomed(_ n: NodeID, _ d: UInt64, epoch: UInt64, now: UInt64, into out: inout [ClusterAction]) {
        guard config.views, d == view, peers[n] != nil else { return }
        if epoch == viewEpoch {
            rehomedBy[n] = d
            if takenOver { tookOver(now: now, into: &out) }
        } else if reannounced.insert(n).inserted {
            send(.view(view), to: n, correlation: viewEpoch, now: now, into: &out)
        }
    }

    /// After a view change or the last peer's `rehomed`: creates waiting
    /// for the takeover start over (their homes may have moved; one still
    /// homed here and not taken over keeps waiting, with its deadline), and
    /// parked messages this node can now serve are served.
    mutating func tookOver(now: UInt64, into out: inout [ClusterAction]) {
        serveParked(now: now, into: &out)
        let waiting = awaitingTakeover
        awaitingTakeover = []
        let open = takenOver
        for w in waiting {
            if !open && home(of: w.create.id) == me {
                awaitingTakeover.append(w)
                noteDeadline(w.deadline)
            } else { create(w.create, now: now, into: &out) }
        }
        let items = awaitingTakeoverBatch
        awaitingTakeoverBatch = []
        for b in items {
            if !open && home(of: b.id) == me {
                awaitingTakeoverBatch.append(b)
                noteDeadline(b.deadline)
            } else {
                reserveBatchItem(b.token, b.index, b.id, deadline: b.deadline, now: now, into: &out)
            }
        }
    }

    /// Local creates waiting for this home to take over its view.
    public var awaitingTakeoverCount: Int { awaitingTakeover.count + awaitingTakeoverBatch.count }

    /// Local creates that waited for a takeover longer than a request may.
    mutating func expireTakeover(now: UInt64, into out: inout [ClusterAction]) {
        guard !awaitingTakeover.isEmpty || !awaitingTakeoverBatch.isEmpty else { return }
        let e = StoreError.nodeUnavailable(me, why: "membership changing: this home has not heard every peer finish re-homing; retry")
        for w in awaitingTakeover where w.deadline <= now { reply(w.create.client, w.create.requestId, .error(e), into: &out) }
        awaitingTakeover.removeAll { $0.deadline <= now }
        for b in awaitingTakeoverBatch where b.deadline <= now { batchAnswered(b.token, b.index, e, into: &out) }
        awaitingTakeoverBatch.removeAll { $0.deadline <= now }
    }

    /// Serves a reserve or publish in this node's view (SPEC §10.4 table).
    mutating func serve(_ m: PeerMessage, from n: NodeID, correlation corr: UInt64, now: UInt64, into out: inout [ClusterAction]) {
        switch m {
        case .reserve(let id, _):
            let ok = store.location(id) == nil && directory.reserve(id, by: n)
            // A re-homing reserve (correlation 0) is not answered.
            if corr != 0 { answer(n, corr, .result(code: ok ? 0 : StoreError.alreadyExists(id).peerCode), now: now, into: &out) }
        case .reserveAllocate(let id, _, let owner, let d, let md):
            guard store.location(id) == nil, directory.reserve(id, by: n) else {
                answer(n, corr, .result(code: StoreError.alreadyExists(id).peerCode), now: now, into: &out)
                return
            }
            // Granted: the owner allocates for the creator and answers it
            // (SPEC §10.6 "create"); a home that cannot hand on says 0.
            if owner == me {
                allocateHere(id, dataSize: d, metadataSize: md, for: n, correlation: corr, now: now, into: &out)
            } else if owner != n, peers[owner] != nil, let creator = peers[n] {
                send(.allocateFor(id, dataSize: d, metadataSize: md, creator: n, incarnation: creator.incarnation), to: owner, correlation: corr,
                     now: now, into: &out)
            } else {
                answer(n, corr, .result(code: 0), now: now, into: &out)
            }
        case .publish(let id, let owner, let creator, let l, let digest, _):
            for w in directory.publish(id, owner: owner, creator: creator, location: l, digest: digest) {
                published(id, owner: owner, location: l, digest: digest, to: w, now: now, into: &out)
            }
            if corr != 0 { acknowledge(n, corr, into: &out) }
        default: break
        }
    }

    /// A parked message its sender's view left behind: a reserve is answered
    /// "membership changed, retry" (13, nodeUnavailable), an acknowledged
    /// publish is acknowledged (the sender re-published it in its new view).
    mutating func superseded(_ m: PeerMessage, from n: NodeID, correlation corr: UInt64, now: UInt64, into out: inout [ClusterAction]) {
        guard corr != 0 else { return }
        switch m {
        case .reserve, .reserveAllocate: answer(n, corr, .result(code: StoreError.nodeUnavailable(me, why: "").peerCode), now: now, into: &out)
        case .publish: acknowledge(n, corr, into: &out)
        default: break
        }
    }

    /// `n` took back what it parked here for `id` (SPEC §10.4 "Views"):
    /// an `unreserve` its reserve, an `unpublish` its publish. They are not
    /// judged by view, so one can overtake the reserve or publish it follows
    /// on the link while that waits for a view; served later, that would
    /// leave an entry nothing holds for good (a reservation answering
    /// `notSealed`, an owner that no longer has the object: simulator cluster
    /// seed 1585). Whoever still waits is answered as if superseded.
    mutating func withdrawParked(_ id: ObjectID, reserve: Bool, from n: NodeID, now: UInt64, into out: inout [ClusterAction]) {
        guard let list = parked[n] else { return }
        func matches(_ m: PeerMessage) -> Bool {
            switch m {
            case .reserve(let i, _), .reserveAllocate(let i, _, _, _, _): return reserve && i == id
            case .publish(let i, _, _, _, _, _): return !reserve && i == id
            default: return false
            }
        }
        guard list.contains(where: { matches($0.message) }) else { return }
        let kept = list.filter { !matches($0.message) }
        parked[n] = kept.isEmpty ? nil : kept
        for p in list where matches(p.message) { superseded(p.message, from: n, correlation: p.corr, now: now, into: &out) }
    }

    /// `view(d)` from `n`: whatever `n` sent in other views is superseded.
    mutating func senderMoved(_ n: NodeID, to d: UInt64, now: UInt64, into out: inout [ClusterAction]) {
        guard let list = parked[n] else { return }
        parked[n] = nil
        var kept: [Parked] = []
        for p in list {
            if p.view == d { kept.append(p) } else { superseded(p.message, from: n, correlation: p.corr, now: now, into: &out) }
        }
        if !kept.isEmpty { parked[n] = kept }
    }

    /// This node moved to view `view`: tell every live peer first (FIFO
    /// links: before anything sent in it), then serve what waited for it.
    mutating func enterView(now: UInt64, into out: inout [ClusterAction]) {
        view = currentView
        guard config.views else { return }
        viewEpoch &+= 1
        rehomedBy.removeAll()
        reannounced.removeAll()
        for n in peers.keys.sorted() { send(.view(view), to: n, correlation: viewEpoch, now: now, into: &out) }
    }

    mutating func serveParked(now: UInt64, into out: inout [ClusterAction]) {
        // Publishes of this view at once; reserves once taken over: the
        // re-homing ones (not fresh) of every sender before any new one.
        let open = takenOver
        for pass in 0..<2 {
            func due(_ p: Parked) -> Bool {
                guard p.view == view else { return false }
                guard p.message.isReserve else { return pass == 0 }
                return open && p.fresh == (pass == 1)
            }
            for n in parked.keys.sorted() {
                guard let list = parked[n], list.contains(where: due) else { continue }
                parked[n] = nil
                var kept: [Parked] = []
                for p in list {
                    if due(p) { serve(p.message, from: n, correlation: p.corr, now: now, into: &out) } else { kept.append(p) }
                }
                if !kept.isEmpty { parked[n] = kept }
            }
        }
    }
}
