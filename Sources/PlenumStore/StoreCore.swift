import PlenumMemory

/// The store as a deterministic state machine (SPEC.md §9): events in,
/// actions out; no I/O, no clocks (time arrives with each event), no threads.
/// The daemon is a thin shell around it; the simulator can drive it too.
///
/// ```
///   create ──▶ [created, creator's] ──seal──▶ [sealed] ──get──▶ refs > 0 ──release──▶ refs = 0
///      │               │                          │                                      │
///      │             abort / creator gone         └──delete (refs = 0) / LRU evict ◀─────┘
///      ▼               ▼
///   allocator ◀──── memory freed
/// ```
/// Invariants (checked by `checkInvariants`, used by the tests): allocator
/// used bytes = Σ reserved bytes of objects; an object's refCount = Σ of the
/// clients' references to it; only sealed objects have references.
public struct StoreCore: Sendable {
    public struct Config: Sendable {
        public var base: Int
        public var capacity: Int
        public var lineSize: Int
        public var maxIdsPerRequest = 4096
        /// Ids one client's blocking gets may name at once (their sum): a
        /// client cannot make the store hold unbounded waiting state.
        public var maxWaitingIdsPerClient = 65_536
        /// Store-level protocol mutants (SPEC §7.4): only the simulator
        /// sets them; production runs none.
        public var mutants: ProtocolMutants = []
        public init(base: Int, capacity: Int, lineSize: Int) {
            self.base = base
            self.capacity = capacity
            self.lineSize = lineSize
        }
    }

    struct Entry: Sendable {
        var location: ObjectLocation
        var state: ObjectState
        var creator: ClientID
        var refCount = 0
        var createdNanos: UInt64
        var sealedNanos: UInt64?
        var digest: UInt64?
    }

    struct Client: Sendable {
        var unsealed: Set<ObjectID> = []
        var references: [ObjectID: Int] = [:]
        var subscribed = false
    }

    public let config: Config
    var allocator: RegionAllocator
    var objects: [ObjectID: Entry] = [:]
    var clients: [ClientID: Client] = [:]
    var waits = WaitIndex()
    /// Eviction candidates, least recently used first.
    var lru = LRUList()
    /// Objects deleted while in use or unsealed by a client that asked to
    /// have them deleted at their last release (Plasma's deletion cache,
    /// SPEC §11.9): removed when their last reference goes.
    public internal(set) var deleteAtRelease: Set<ObjectID> = []
    /// Whether a create may evict (Plasma's `evict_if_full`; set around one
    /// create by the cluster core, SPEC §11.9).
    public var evictOnCreate = true
    public internal(set) var evictions = 0
    public internal(set) var evictedBytes = 0
    /// Work counters (tests assert costs with them, not with clocks):
    /// waiters examined because of seals, candidates examined by eviction.
    public internal(set) var waiterVisits = 0
    public internal(set) var evictionVisits = 0

    public init(config: Config) {
        self.config = config
        allocator = RegionAllocator(base: config.base, size: config.capacity, lineSize: config.lineSize)
    }

    /// Where object `id` lives, if it exists.
    public func location(_ id: ObjectID) -> ObjectLocation? { objects[id]?.location }

    /// Whether `id` exists and is sealed.
    public func isSealed(_ id: ObjectID) -> Bool { objects[id]?.state == .sealed }


    /// The sealed object's digest, if it is sealed.
    public func digest(_ id: ObjectID) -> UInt64? { objects[id]?.digest }

    /// When `id` was created (monotonic ns): with the id, it names one
    /// object among those the id has named.
    public func createdNanos(_ id: ObjectID) -> UInt64? { objects[id]?.createdNanos }

    /// Records a digest taken after the seal (SPEC §11.3 "Seal"): only for
    /// the sealed object `id` created at `created`; false for any other
    /// (deleted, or the id now names another object).
    public mutating func recordDigest(_ id: ObjectID, _ digest: UInt64, ifCreatedAt created: UInt64) -> Bool {
        guard var e = objects[id], e.state == .sealed, e.createdNanos == created else { return false }
        e.digest = digest
        objects[id] = e
        return true
    }

    /// The client that created `id` (its creator until sealed, for the record after).
    public func creator(_ id: ObjectID) -> ClientID? { objects[id]?.creator }

    /// How many references client `c` holds.
    public func references(of c: ClientID) -> Int { clients[c]?.references.values.reduce(0, +) ?? 0 }

    /// Clients that subscribed to notifications.
    public var subscribers: [ClientID] { clients.filter { $0.value.subscribed }.map(\.key) }

    /// Every sealed object and where it is (the cluster republishes them).
    public var sealedObjects: [(ObjectID, ObjectLocation, UInt64)] {
        objects.compactMap { id, e in e.state == .sealed ? (id, e.location, e.digest ?? 0) : nil }
    }

    /// The earliest get deadline, for the shell's timer.
    public var nextDeadline: UInt64? { waits.earliestDeadline }

    /// The deadline of a get with `timeoutMs` from `now`: nil (forever) for
    /// a negative timeout and for one so large that it overflows — large
    /// values saturate to forever instead of wrapping into the past.
    public static func deadline(now: UInt64, timeoutMs: Int64) -> UInt64? {
        guard timeoutMs >= 0 else { return nil }
        let (ns, o1) = UInt64(timeoutMs).multipliedReportingOverflow(by: 1_000_000)
        let (d, o2) = now.addingReportingOverflow(ns)
        return o1 || o2 ? nil : d
    }

    public func knows(client c: ClientID) -> Bool { clients[c] != nil }

    /// What the heartbeat line carries (SPEC §10.10), in O(log n): unlike
    /// `stats`, which counts sealed objects one by one (for status and
    /// metrics scrapes, not for every beat).
    public var load: (capacity: Int, used: Int, objects: Int, largestFree: Int) {
        (config.capacity, allocator.used, objects.count, allocator.largestFree)
    }

    public var stats: StoreStats {
        StoreStats(capacity: config.capacity, used: allocator.used, objects: objects.count,
                   sealed: objects.values.filter { $0.state == .sealed }.count, clients: clients.count,
                   evictions: evictions, evictedBytes: evictedBytes, allocator: allocator.stats)
    }

    // MARK: events

    public mutating func handle(_ event: StoreEvent, now: UInt64) -> [StoreAction] {
        var out: [StoreAction] = []
        handle(event, now: now, into: &out)
        return out
    }

    /// `handle`, appending to `out` (a caller reuses one array).
    public mutating func handle(_ event: StoreEvent, now: UInt64, into out: inout [StoreAction]) {
        switch event {
        case .connected(let c):
            clients[c] = clients[c] ?? Client()
        case .disconnected(let c):
            disconnect(c, into: &out)
        case .tick:
            break
        case .request(let c, let rid, let request):
            guard clients[c] != nil else {
                out.append(.reply(c, requestId: rid, .error(.unknownClient(c))))
                break
            }
            if let response = handle(request, client: c, requestId: rid, now: now, into: &out) {
                out.append(.reply(c, requestId: rid, response))
            }
        }
        expireWaiters(now: now, into: &out)
    }

    /// nil when the reply is deferred (a blocking get).
    mutating func handle(_ request: StoreRequest, client c: ClientID, requestId rid: UInt64, now: UInt64,
                         into out: inout [StoreAction]) -> StoreResponse? {
        switch request {
        case .create(let id, let dataSize, let metadataSize):
            return create(id, dataSize, metadataSize, client: c, now: now, into: &out)
        case .seal(let id, let digest):
            guard var e = objects[id] else { return .error(.notFound(id)) }
            guard e.state == .created else { return .error(.alreadySealed(id)) }
            guard e.creator == c else { return .error(.notCreator(id)) }
            e.state = .sealed
            e.sealedNanos = now
            e.digest = digest
            objects[id] = e
            lru.append(id, reserved: e.location.reserved)
            clients[c]?.unsealed.remove(id)
            for (s, client) in clients where client.subscribed { out.append(.notify(s, .sealed(id, e.location))) }
            wakeWaiters(sealed: id, into: &out)
            return .sealed
        case .abort(let id):
            guard let e = objects[id] else { return .error(.notFound(id)) }
            guard e.state == .created else { return .error(.alreadySealed(id)) }
            guard e.creator == c else { return .error(.notCreator(id)) }
            remove(id)
            clients[c]?.unsealed.remove(id)
            return .aborted
        case .get(let ids, let timeoutMs):
            guard ids.count <= config.maxIdsPerRequest else { return .error(.tooManyIds(ids.count, limit: config.maxIdsPerRequest)) }
            // A poll answers with what is there: no set of the missing ids.
            if timeoutMs == 0 { return .objects(take(ids, client: c)) }
            let missing = Set(ids.filter { objects[$0]?.state != .sealed })
            if missing.isEmpty { return .objects(take(ids, client: c)) }
            let waiting = waits.waitingIds[c, default: 0]
            guard waiting + ids.count <= config.maxWaitingIdsPerClient else {
                return .error(.tooManyWaiting(waiting + ids.count, limit: config.maxWaitingIdsPerClient))
            }
            waits.add(client: c, requestId: rid, ids: ids, missing: missing, deadline: Self.deadline(now: now, timeoutMs: timeoutMs))
            return nil
        case .release(let id):
            return dropReference(id, client: c, into: &out) ? .released : .error(.noReference(id))
        case .contains(let id):
            return .contains(objects[id]?.state == .sealed)
        case .delete(let ids):
            guard ids.count <= config.maxIdsPerRequest else { return .error(.tooManyIds(ids.count, limit: config.maxIdsPerRequest)) }
            return .deleted(ids.map { id in
                guard let e = objects[id] else { return .notFound(id) }
                guard e.state == .sealed else { return .notSealed(id) }
                guard freeable(id, e) else { return .inUse(id, references: e.refCount) }
                remove(id)
                notifyDeleted(id, into: &out)
                out.append(.removed(id))
                return nil
            })
        case .list:
            return .list(objects.map { id, e in
                ObjectInfo(id: id, location: e.location, state: e.state, refCount: e.refCount, createdNanos: e.createdNanos,
                           constructNanos: e.sealedNanos.map { $0 &- e.createdNanos }, digest: e.digest)
            }.sorted { $0.id < $1.id })
        case .evict(let bytes):
            return .evicted(bytes: evict(atLeast: max(0, bytes), into: &out))
        case .subscribe:
            clients[c]!.subscribed = true
            return .subscribed
        case .stats:
            return .stats(stats)
        case .refresh(let ids):
            guard ids.count <= config.maxIdsPerRequest else { return .error(.tooManyIds(ids.count, limit: config.maxIdsPerRequest)) }
            for id in ids { lru.touch(id) }
            return .refreshed
        }
    }

    mutating func create(_ id: ObjectID, _ dataSize: Int, _ metadataSize: Int, client c: ClientID, now: UInt64,
                         into out: inout [StoreAction]) -> StoreResponse {
        guard dataSize >= 0, metadataSize >= 0, dataSize <= Int.max - metadataSize else {
            return .error(.invalidSize(data: dataSize, metadata: metadataSize))
        }
        let total = dataSize + metadataSize
        guard total <= config.capacity else { return .error(.tooLarge(requested: total, capacity: config.capacity)) }
        guard objects[id] == nil else { return .error(.alreadyExists(id)) }
        let offset: Int
        switch allocate(total, into: &out) {
        case .success(let o): offset = o
        case .failure(let e): return .error(e)
        }
        let location = ObjectLocation(offset: offset, dataSize: dataSize, metadataSize: metadataSize,
                                      reserved: allocator.length(at: offset)!)
        objects[id] = Entry(location: location, state: .created, creator: c, createdNanos: now)
        clients[c]!.unsealed.insert(id)
        return .created(location)
    }

    /// Takes a reference on every sealed id for client c.
    mutating func take(_ ids: [ObjectID], client c: ClientID) -> [ObjectLocation?] {
        // The client's reference table is moved out for the loop (unique,
        // so no copy) and back after it: one client lookup, not one per id;
        // each object is found once, by index.
        guard clients[c] != nil else { return ids.map { _ in nil } }
        var refs = clients[c]!.references
        clients[c]!.references = [:]
        defer { clients[c]!.references = refs }
        refs.reserveCapacity(refs.count + ids.count)   // one growth, not one per doubling
        var out: [ObjectLocation?] = []
        out.reserveCapacity(ids.count)
        for id in ids {
            guard let i = objects.index(forKey: id), objects.values[i].state == .sealed else { out.append(nil); continue }
            if objects.values[i].refCount == 0 { lru.remove(id) }
            objects.values[i].refCount += 1
            refs[id, default: 0] += 1
            out.append(objects.values[i].location)
        }
        return out
    }

    /// A get whose every id is sealed here, answered on the spot: the reply
    /// and the references `handle(.get(ids, timeoutMs:))` gives then (with
    /// every id sealed nothing waits, whatever the timeout). nil — too many
    /// ids, an unknown client, an id not sealed here — when `handle` must
    /// take it.
    public mutating func getAtOnce(_ ids: [ObjectID], client c: ClientID) -> [ObjectLocation?]? {
        guard ids.count <= config.maxIdsPerRequest, clients[c] != nil,
              ids.allSatisfy({ objects[$0]?.state == .sealed }) else { return nil }
        return take(ids, client: c)
    }

    /// A release that only counts down, done on the spot: true when it was
    /// `handle(.release(id))` answering `released` with no other action;
    /// false — no reference (an error reply), or the last reference to an
    /// object in the deletion cache (a removal) — when `handle` must take it.
    public mutating func releaseAtOnce(_ id: ObjectID, client c: ClientID) -> Bool {
        if let e = objects[id], e.refCount == 1, deleteAtRelease.contains(id) { return false }
        var none: [StoreAction] = []
        guard dropReference(id, client: c, into: &none) else { return false }
        assert(none.isEmpty, "a release done at once caused actions")
        return true
    }

    /// Drops one of c's references to `id` (false: c holds none); an
    /// object left unreferenced becomes evictable, or goes (deletion cache).
    mutating func dropReference(_ id: ObjectID, client c: ClientID, into out: inout [StoreAction]) -> Bool {
        guard let held = clients[c]?.references[id], held > 0, objects[id] != nil else { return false }
        clients[c]!.references[id] = held == 1 ? nil : held - 1
        objects[id]!.refCount -= 1
        unreferenced(id, into: &out)
        return true
    }

    /// After a reference was dropped: an unreferenced sealed object becomes
    /// an eviction candidate, as the most recently used.
    /// One in the deletion cache is removed instead (as a delete).
    mutating func unreferenced(_ id: ObjectID, into out: inout [StoreAction]) {
        guard let e = objects[id], e.refCount == 0, e.state == .sealed else { return }
        if deleteAtRelease.contains(id) {
            remove(id)
            notifyDeleted(id, into: &out)
            out.append(.removed(id))
            return
        }
        lru.append(id, reserved: e.location.reserved)
    }

    /// Remembers `id` to be deleted at its last release (Plasma's deletion
    /// cache): only an object that exists and is in use or unsealed; the
    /// entry goes with the object however it goes. Returns whether it was
    /// remembered.
    @discardableResult
    public mutating func deleteAtLastRelease(_ id: ObjectID) -> Bool {
        guard let e = objects[id], e.state == .created || e.refCount > 0 else { return false }
        deleteAtRelease.insert(id)
        return true
    }

    /// No reference holds the object. (The mutant `freeDespiteRemoteReferences`
    /// counts only local clients: the references of peers, which are
    /// pseudo-clients with the top bit set (SPEC §10.5), are ignored.)
    func freeable(_ id: ObjectID, _ e: Entry) -> Bool {
        if e.refCount == 0 { return true }
        guard config.mutants.contains(.freeDespiteRemoteReferences) else { return false }
        let local = clients.reduce(0) { $0 + ($1.key & (1 << 63) == 0 ? ($1.value.references[id] ?? 0) : 0) }
        return local == 0
    }

    mutating func remove(_ id: ObjectID) {
        guard let e = objects.removeValue(forKey: id) else { return }
        lru.remove(id)
        deleteAtRelease.remove(id)
        if e.refCount > 0 {   // only under the mutant above: forget the references
            for c in clients.keys where clients[c]!.references[id] != nil { clients[c]!.references[id] = nil }
        }
        try? allocator.free(e.location.offset)
    }

    func notifyDeleted(_ id: ObjectID, into out: inout [StoreAction]) {
        for (s, client) in clients where client.subscribed { out.append(.notify(s, .deleted(id))) }
    }

    /// A client went away: abort what it left unsealed, drop its references,
    /// waiters and subscription.
    mutating func disconnect(_ c: ClientID, into out: inout [StoreAction]) {
        guard let client = clients.removeValue(forKey: c) else { return }
        for id in client.unsealed { remove(id) }
        // In id order: the LRU order must not depend on hashing (replays).
        for (id, n) in client.references.sorted(by: { $0.key < $1.key }) where objects[id] != nil {
            objects[id]!.refCount -= n
            unreferenced(id, into: &out)
        }
        waits.drop(client: c)
    }

    /// Throws a description of the first broken invariant (tests).
    public func checkInvariants() -> String? {
        let reserved = objects.values.reduce(0) { $0 + $1.location.reserved }
        if reserved != allocator.used { return "allocator has \(allocator.used) bytes used, objects reserve \(reserved)" }
        for (id, e) in objects {
            let held = clients.values.reduce(0) { $0 + ($1.references[id] ?? 0) }
            if held != e.refCount { return "\(id): refCount \(e.refCount) but clients hold \(held)" }
            if e.state == .created && e.refCount != 0 { return "\(id): unsealed but referenced" }
            if lru.contains(id) != (e.state == .sealed && e.refCount == 0) { return "\(id): LRU membership wrong" }
        }
        if lru.count != objects.values.filter({ $0.state == .sealed && $0.refCount == 0 }).count { return "LRU holds removed objects" }
        if let gone = deleteAtRelease.first(where: { objects[$0] == nil }) { return "\(gone): in the deletion cache, but no such object" }
        let evictable = objects.values.reduce(0) { $0 + ($1.state == .sealed && $1.refCount == 0 ? $1.location.reserved : 0) }
        if lru.bytes != evictable { return "LRU counts \(lru.bytes) evictable bytes, objects \(evictable)" }
        return nil
    }
}
