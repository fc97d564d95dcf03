import PlenumStore

/// The cluster protocol as a deterministic state machine beside `StoreCore`
/// (SPEC §10): local client requests, peer messages, membership changes and
/// time in; client replies, peer messages and memory checks out. No I/O,
/// clocks or threads: the daemon is its shell, tests and the simulator can
/// run N of them over any transport.
///
/// ```
///   client ─▶ ClusterCore ─┬─ local object ─▶ StoreCore (unchanged rules)
///                          ├─ id's home  ◀──▶ Directory   (reserve / lookup / publish)
///                          └─ id's owner ◀──▶ owner's StoreCore, as pseudo-client "node n"
/// ```
/// A peer's references live in the owner's `StoreCore` as references of the
/// pseudo-client `ClusterCore.pseudoClient(n)`: the owner's eviction,
/// delete and free rules see every node's references, and a dead node's are
/// dropped by disconnecting that pseudo-client.
protocol Gathering {
    associatedtype Value
    var results: [Value] { get set }
    var remaining: Int { get set }
}

public struct ClusterCore: Sendable {
    public struct Config: Sendable {
        public var node: NodeID
        public var incarnation: UInt64
        /// Nodes whose memory this node maps (may create and read there).
        public var reachable: Set<NodeID>
        /// A peer request unanswered this long fails (ns).
        public var requestTimeout: UInt64 = 5_000_000_000
        /// A remote get asks the home to forward the acquire to the owner
        /// (`lookupAcquire`, SPEC §10.6 "get"): 3 one-way hops instead of 4.
        /// Off over the gRPC baseline, whose unary calls pair each request
        /// with the answer of the node asked.
        public var forwardAcquire = true
        /// A peer's delete the owner carried out is answered by the home,
        /// once it unpublished (`unpublishFor`, SPEC §10.6 "delete"): 3
        /// one-way hops instead of 4. Off over gRPC, as `forwardAcquire`.
        public var forwardDelete = true
        /// A create on a peer asks the home to hand the granted reservation
        /// on to the owner (`reserveAllocate`, SPEC §10.6 "create"), whose
        /// `allocateReply` comes straight back: 3 one-way hops instead of 4
        /// (2 when the home is the owner). Off over gRPC, as `forwardAcquire`.
        public var forwardCreate = true
        /// Views on reserves and publishes (SPEC §10.4 "Views"). They need
        /// FIFO links, so the gRPC carriers (one call per message) turn them
        /// off: view 0 is sent, and a 0 is served in any view.
        public var views = true
        /// Peers to hear from before this node judges a reservation as a
        /// home (SPEC §10.4 "Starting"): the cluster file's other nodes,
        /// for a node that starts while its cluster may be running. Each
        /// is resolved by its `peerUp`, `peerDown` or `peerAbsent`.
        public var awaiting: Set<NodeID> = []
        public init(node: NodeID, incarnation: UInt64, reachable: Set<NodeID>) {
            self.node = node
            self.incarnation = incarnation
            self.reachable = reachable
        }
    }

    /// Clients with this bit are peers (never assigned by the daemon).
    public static let peerBit: ClientID = 1 << 63
    public static func pseudoClient(_ n: NodeID) -> ClientID { peerBit | ClientID(n) }

    struct Create: Sendable {
        var client: ClientID
        var requestId: UInt64
        var id: ObjectID
        var dataSize: Int
        var metadataSize: Int
        var target: NodeID?
        /// Plasma's `evict_if_full`: false places it in free memory of this
        /// node only, evicting nothing (SPEC §11.9).
        var evict = true
    }

    enum Pending: Sendable {
        case reserve(Create)
        /// A `reserveAllocate` at the home: answered by the home (`result`:
        /// a refusal, or 0 when it did not hand on) or by the create's
        /// target, the owner (`allocateReply`).
        case reserveAllocate(Create)
        case batchReserve(token: UInt64, index: Int, id: ObjectID)
        case allocate(Create)
        case lookup(get: UInt64, index: Int)
        /// A `lookupAcquire`: answered by the home (`lookupReply`, or an
        /// `acquireReply` when it owns the object) or by the owner it
        /// forwarded to (`acquireReply`).
        case lookupAcquire(get: UInt64, index: Int, id: ObjectID)
        case contains(ClientID, requestId: UInt64)
        case deleteLookup(token: UInt64, index: Int)
        case acquire(get: UInt64, index: Int, id: ObjectID)
        case remoteSeal(ClientID, requestId: UInt64, id: ObjectID)
        case remoteAbort(ClientID, requestId: UInt64, id: ObjectID)
        /// A delete at the owner: answered by the owner (refused, or homed
        /// there) or, once it unpublished, by `home` (`unpublishFor`).
        case remoteDelete(token: UInt64, index: Int, home: NodeID)
        case list(token: UInt64)
        /// A home's acknowledgement of a publish or unpublish made for client
        /// (or pseudo-client) `c`: its held replies may go (SPEC §10.4).
        case ack(ClientID)
        case ignore

        /// Answered with a grant (a reference, an allocation) by a node the
        /// one asked handed it on to, which may outlive the node asked.
        var grantedElsewhere: Bool {
            switch self {
            case .lookupAcquire, .reserveAllocate: return true
            default: return false
            }
        }

        /// The node a forwarded answer is expected from: its death fails
        /// the request as the death of the node asked does.
        var forwardedVia: NodeID? {
            switch self {
            case .remoteDelete(_, _, let h): return h
            case .reserveAllocate(let k): return k.target
            default: return nil
            }
        }
    }

    struct Outstanding: Sendable {
        var node: NodeID
        var deadline: UInt64
        var what: Pending
        /// The view the request was sent in (a reserve granted in an older
        /// view is given back, SPEC §10.4 "Handoff").
        var view: UInt64 = 0
    }

    struct Get: Sendable {
        var client: ClientID
        var requestId: UInt64
        var ids: [ObjectID]
        var results: [ObjectLocation?]
        var open: Set<Int>
        var deadline: UInt64?
        var watch: Bool
    }

    /// A request answered piece by piece (per id, or per peer for list).
    struct Gather<T: Sendable>: Sendable, Gathering {
        var client: ClientID
        var requestId: UInt64
        var ids: [ObjectID] = []
        var results: [T]
        var remaining: Int
    }

    /// Create-and-seal reservations (the shell's, no client reply here).
    typealias Batch = Gather<StoreError?>

    struct Held: Sendable {
        var node: NodeID
        var count: Int
        /// Where the bytes are (region handle included) and their seal-time digest.
        var location: ObjectLocation
        var digest: UInt64
    }

    public var config: Config
    public internal(set) var store: StoreCore
    var directory = Directory()
    public internal(set) var peers: [NodeID: PeerInfo] = [:] { didSet { live = [me] + peers.keys.sorted(); peersChanges &+= 1 } }
    /// Grows at every change of `peers`: a shell that publishes the view
    /// (SPEC §10.4 "Client peeks") compares it with what it last wrote.
    public private(set) var peersChanges: UInt64 = 0
    public internal(set) var loads: [NodeID: PeerLoad] = [:]
    public internal(set) var counters = ClusterCounters()
    var nextCorrelation: UInt64
    var outstanding: [UInt64: Outstanding] = [:]
    var gets: [UInt64: Get] = [:]
    /// Ids each client's waiting cluster gets name (the same per-client
    /// bound as the store's blocking gets, SPEC §9.4).
    var waitingIds: [ClientID: Int] = [:]
    var watching: [ObjectID: [(get: UInt64, index: Int)]] = [:]
    var digestChecks: [UInt64: (get: UInt64, index: Int, node: NodeID, id: ObjectID, location: ObjectLocation, digest: UInt64)] = [:]
    var deletes: [UInt64: Gather<StoreError?>] = [:]
    var lists: [UInt64: Gather<ObjectInfo>] = [:]
    var batches: [UInt64: Batch] = [:]
    /// References local clients hold on objects in peers' memory.
    var remoteRefs: [ClientID: [ObjectID: Held]] = [:]
    /// Objects local clients created in peers' memory, not sealed yet.
    var remoteUnsealed: [ClientID: [ObjectID: RemoteUnsealed]] = [:]
    /// An object a local client is creating in a peer's memory: where, so
    /// that its lines can be written back and dropped here before the abort
    /// leaves (SPEC §10.8 "Writer side").
    struct RemoteUnsealed: Sendable {
        var node: NodeID
        /// `region` is the peer region's handle on this node.
        var location: ObjectLocation
    }
    /// Ids this node reserved for local creates not sealed yet.
    var localUnsealed: [ClientID: Set<ObjectID>] = [:]
    /// Every reservation this node holds and has not published or released
    /// (re-sent to the new home when membership changes).
    var myReservations: Set<ObjectID> = []
    /// Those of them re-sent to a home since they were granted: one whose
    /// object a peer seals for this node is given back at the seal
    /// (`sealedElsewhere`), since the owner's publish may never reach that
    /// home (SPEC §10.4 "Re-homing").
    var rehomedReservations: Set<ObjectID> = []
    // barrier
    var barrierWaiters: [UInt64: [(client: ClientID, requestId: UInt64)]] = [:]
    var barrierArrived: [UInt64: UInt64] = [:]      // name → round this node arrived at
    var barrierPassed: [UInt64: UInt64] = [:]       // name → last round passed
    var barrierArrivals: [UInt64: [UInt64: Set<NodeID>]] = [:]  // coordinator: name → round → nodes
    /// Directory updates a client's request made and its home has not yet
    /// acknowledged; that client's replies wait behind them, so whatever a
    /// reply announces is already visible cluster-wide.
    var awaitingAcks: [ClientID: Int] = [:]
    /// Requests that timed out, kept a while so a late grant is given back.
    var expired: [UInt64: Outstanding] = [:]
    var held: [ClientID: [ClusterAction]] = [:]
    /// The view homes are computed in (SPEC §10.4 "Views"), and reserves
    /// and publishes from peers in other views, per sender, in order.
    public internal(set) var view: UInt64 = 0
    var parked: [NodeID: [Parked]] = [:]
    /// Per peer, the last view it said it finished re-homing in (`rehomed`,
    /// SPEC §10.4 "Handoff").
    var rehomedBy: [NodeID: UInt64] = [:]
    /// This node's view epoch: bumped at every view it enters, carried as
    /// the correlation of its `view` announcements; only a `rehomed`
    /// echoing it counts for the takeover (a view digest can recur).
    var viewEpoch: UInt64 = 0
    /// Per peer, the epoch of its last `view` announcement; and the peers
    /// asked again (once per epoch) after a `rehomed` echoing an old one.
    var announced: [NodeID: UInt64] = [:]
    var reannounced: Set<NodeID> = []
    /// Local creates of ids homed here, waiting for this home to take over
    /// its view, with their deadlines.
    var awaitingTakeover: [(create: Create, deadline: UInt64)] = []
    /// Ids of create-and-seal batches homed here, waiting the same way.
    var awaitingTakeoverBatch: [(token: UInt64, index: Int, id: ObjectID, deadline: UInt64)] = []
    /// No deadline of `outstanding`, `gets` or the takeover queues is
    /// earlier: `expire` scans them only once `now` reaches it (every event
    /// ran the scan, O(requests in flight) each). Lowered by `noteDeadline`
    /// wherever a deadline is set, recomputed by the scan.
    var expiryScanAt: UInt64 = .max
    /// The array `storeActions` fills, kept between calls.
    var spareStoreActions: [StoreAction] = []
    /// Peers of `config.awaiting` not yet resolved: until none is left, this
    /// node has taken over no view (SPEC §10.4 "Starting").
    public internal(set) var unresolved: Set<NodeID> = []
    /// Reads peers' directory indexes (SPEC §10.4 "Directory index"): set
    /// by a shell whose peers' regions are mapped; nil asks every home by
    /// message.
    public var peeker: (any DirectoryPeeker)?

    public init(config: Config, store: StoreConfig) {
        self.config = config
        self.store = StoreCore(config: store)
        // Correlation ids of different incarnations do not collide.
        nextCorrelation = (config.incarnation & 0xFFFF_FFFF) << 24 | 1
        live = [config.node]
        view = currentView
        unresolved = config.awaiting.subtracting([config.node])
    }

    public typealias StoreConfig = StoreCore.Config

    public var me: NodeID { config.node }
    /// Live nodes, this one included, ascending after this one (kept with
    /// `peers`: every remote operation computes a home over it).
    public private(set) var live: [NodeID] = []
    public func home(of id: ObjectID) -> NodeID { Home.of(id, among: live) }

    // MARK: events

    public mutating func handle(_ event: ClusterEvent, now: UInt64) -> [ClusterAction] {
        var out: [ClusterAction] = []
        handle(event, now: now, into: &out)
        return out
    }

    /// `handle`, appending to `out` (a shell reuses one array).
    public mutating func handle(_ event: ClusterEvent, now: UInt64, into out: inout [ClusterAction]) {
        switch event {
        case .local(let e): local(e, now: now, into: &out)
        case .cluster(let c, let rid, let r): cluster(c, rid, r, now: now, into: &out)
        case .peerUp(let n, let info): peerUp(n, info, now: now, into: &out)
        case .peerDown(let n, let why): peerDown(n, why: why, now: now, into: &out)
        case .peerLoad(let n, let l): if peers[n] != nil { loads[n] = l }
        case .peerAbsent(let n): resolved(n, now: now, into: &out)
        case .message(let n, let corr, let m):
            counters.messagesIn += 1
            guard peers[n] != nil else { counters.refusedMessages += 1; break }
            receive(m, from: n, correlation: corr, now: now, into: &out)
        case .digestChecked(let token, let ok): digestChecked(token, ok: ok, now: now, into: &out)
        case .reserveBatch(let token, let ids): reserveBatch(token, ids, now: now, into: &out)
        }
        expire(now: now, into: &out)
    }

    // MARK: plumbing

    /// `correlation`: of a one-way message (a `view` or `rehomed`'s epoch,
    /// SPEC §10.4 "Handoff"); a request gets a fresh one.
    mutating func send(_ m: PeerMessage, to n: NodeID, awaiting: Pending? = nil, correlation oneWay: UInt64 = 0, now: UInt64,
                       into out: inout [ClusterAction]) {
        var corr = oneWay
        if let p = awaiting {
            corr = nextCorrelation
            nextCorrelation &+= 1
            outstanding[corr] = Outstanding(node: n, deadline: now &+ config.requestTimeout, what: p, view: view)
            noteDeadline(now &+ config.requestTimeout)
        }
        counters.messagesOut += 1
        switch m {
        case .notifySealed, .notifyDeleted: break
        default: counters.peerWork += 1
        }
        out.append(.send(n, correlation: corr, m))
    }

    mutating func reply(_ c: ClientID, _ rid: UInt64, _ r: StoreResponse, into out: inout [ClusterAction]) {
        emit(.local(.reply(c, requestId: rid, r)), for: c, into: &out)
    }

    /// Emits now, or holds behind `c`'s unacknowledged directory updates.
    mutating func emit(_ a: ClusterAction, for c: ClientID, into out: inout [ClusterAction]) {
        if !awaitingAcks.isEmpty, (awaitingAcks[c] ?? 0) > 0 { held[c, default: []].append(a) } else { out.append(a) }
    }

    mutating func acknowledged(_ c: ClientID, into out: inout [ClusterAction]) {
        guard let n = awaitingAcks[c] else { return }
        if n > 1 { awaitingAcks[c] = n - 1; return }
        awaitingAcks[c] = nil
        out += held.removeValue(forKey: c) ?? []
    }

    /// Runs a request through the local store as client `c`; returns its
    /// direct reply and forwards every other action (notifications, woken
    /// gets, removals) through `absorb`.
    mutating func runLocal(_ request: StoreRequest, as c: ClientID, now: UInt64, into out: inout [ClusterAction]) -> StoreResponse? {
        var direct: StoreResponse?
        let actions = storeActions(.request(c, requestId: 0, request), now: now)
        for a in actions {
            if case .reply(c, 0, let r) = a { direct = r } else { absorb(a, for: c, now: now, into: &out) }
        }
        recycle(actions)
        return direct
    }

    /// Store actions: replies and notifications go to local clients (never
    /// to pseudo-clients); a removal is unpublished and announced, and
    /// passed on to the shell (which may ignore it).
    mutating func absorb(_ a: StoreAction, for client: ClientID?, now: UInt64, into out: inout [ClusterAction]) {
        switch a {
        case .reply(let c, _, _):
            if c & Self.peerBit == 0 { emit(.local(a), for: c, into: &out) }
        case .notify(let c, _):
            if c & Self.peerBit == 0 { out.append(.local(a)) }
        case .removed(let id):
            unpublish(id, for: client, now: now, into: &out)
            out.append(.local(a))
        case .evicted:
            out.append(.local(a))
        }
    }

    mutating func localActions(of event: StoreEvent, for client: ClientID? = nil, now: UInt64, into out: inout [ClusterAction]) {
        let actions = storeActions(event, now: now)
        for a in actions { absorb(a, for: client, now: now, into: &out) }
        recycle(actions)
    }

    /// The store core's actions for `event`, in the array kept from the
    /// last call (no allocation per request); `recycle` gives it back. A
    /// call made before that (absorbing an action that asks the store
    /// again) gets a fresh array.
    mutating func storeActions(_ event: StoreEvent, now: UInt64) -> [StoreAction] {
        var actions = spareStoreActions.takeForReuse()
        store.handle(event, now: now, into: &actions)
        return actions
    }

    mutating func recycle(_ actions: [StoreAction]) { spareStoreActions = actions }
}
