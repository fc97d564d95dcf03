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
        var lastUse: UInt64
    }

    struct Client: Sendable {
        var unsealed: Set<ObjectID> = []
        var references: [ObjectID: Int] = [:]
        var subscribed = false
    }

    struct Waiter: Sendable {
        var client: ClientID
        var requestId: UInt64
        var ids: [ObjectID]
        var deadline: UInt64?
    }

    public let config: Config
    var allocator: RegionAllocator
    var objects: [ObjectID: Entry] = [:]
    var clients: [ClientID: Client] = [:]
    var waiters: [Waiter] = []
    var useClock: UInt64 = 0
    public private(set) var evictions = 0
    public private(set) var evictedBytes = 0

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
    public var nextDeadline: UInt64? { waiters.compactMap(\.deadline).min() }

    public var stats: StoreStats {
        StoreStats(capacity: config.capacity, used: allocator.used, objects: objects.count,
                   sealed: objects.values.filter { $0.state == .sealed }.count, clients: clients.count,
                   evictions: evictions, evictedBytes: evictedBytes, allocator: allocator.stats)
    }

    // MARK: events

    public mutating func handle(_ event: StoreEvent, now: UInt64) -> [StoreAction] {
        var out: [StoreAction] = []
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
        return out
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
            e.lastUse = tick()
            objects[id] = e
            clients[c]?.unsealed.remove(id)
            for (s, client) in clients where client.subscribed { out.append(.notify(s, .sealed(id, e.location))) }
            wakeWaiters(now: now, into: &out)
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
            let ready = ids.allSatisfy { objects[$0]?.state == .sealed }
            if ready || timeoutMs == 0 { return .objects(take(ids, client: c)) }
            let deadline: UInt64? = timeoutMs < 0 ? nil : now &+ UInt64(timeoutMs) &* 1_000_000
            waiters.append(Waiter(client: c, requestId: rid, ids: ids, deadline: deadline))
            return nil
        case .release(let id):
            guard let held = clients[c]?.references[id], held > 0, objects[id] != nil else { return .error(.noReference(id)) }
            clients[c]!.references[id] = held == 1 ? nil : held - 1
            objects[id]!.refCount -= 1
            objects[id]!.lastUse = tick()
            return .released
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
            for id in ids where objects[id] != nil { objects[id]!.lastUse = tick() }
            return .refreshed
        }
    }

    mutating func create(_ id: ObjectID, _ dataSize: Int, _ metadataSize: Int, client c: ClientID, now: UInt64,
                         into out: inout [StoreAction]) -> StoreResponse {
        guard dataSize >= 0, metadataSize >= 0, dataSize <= Int.max - metadataSize, dataSize + metadataSize > 0 else {
            return .error(.invalidSize(data: dataSize, metadata: metadataSize))
        }
        let total = dataSize + metadataSize
        guard total <= config.capacity else { return .error(.tooLarge(requested: total, capacity: config.capacity)) }
        guard objects[id] == nil else { return .error(.alreadyExists(id)) }
        var offset = allocator.allocate(total)
        if offset == nil {
            let need = allocator.footprint(total)
            let evictable = objects.values.filter { $0.state == .sealed && $0.refCount == 0 }.reduce(0) { $0 + $1.location.reserved }
            // Evict least recently used unreferenced objects until it fits —
            // unless even evicting all of them could not make room.
            if evictable + allocator.stats.free >= need {
                while offset == nil, evictOne(into: &out) { offset = allocator.allocate(total) }
            }
            if offset == nil { return .error(.outOfMemory(requested: need, evictable: evictable)) }
        }
        let location = ObjectLocation(offset: offset!, dataSize: dataSize, metadataSize: metadataSize,
                                      reserved: allocator.length(at: offset!)!)
        objects[id] = Entry(location: location, state: .created, creator: c, createdNanos: now, lastUse: tick())
        clients[c]!.unsealed.insert(id)
        return .created(location)
    }

    /// Takes a reference on every sealed id for client c.
    mutating func take(_ ids: [ObjectID], client c: ClientID) -> [ObjectLocation?] {
        ids.map { id in
            guard let e = objects[id], e.state == .sealed else { return nil }
            objects[id]!.refCount += 1
            objects[id]!.lastUse = tick()
            clients[c]!.references[id, default: 0] += 1
            return e.location
        }
    }

    mutating func wakeWaiters(now: UInt64, into out: inout [StoreAction]) {
        var kept: [Waiter] = []
        for w in waiters {
            if w.ids.allSatisfy({ objects[$0]?.state == .sealed }) {
                out.append(.reply(w.client, requestId: w.requestId, .objects(take(w.ids, client: w.client))))
            } else { kept.append(w) }
        }
        waiters = kept
    }

    mutating func expireWaiters(now: UInt64, into out: inout [StoreAction]) {
        guard waiters.contains(where: { $0.deadline.map { $0 <= now } ?? false }) else { return }
        var kept: [Waiter] = []
        for w in waiters {
            if let d = w.deadline, d <= now {
                out.append(.reply(w.client, requestId: w.requestId, .objects(take(w.ids, client: w.client))))
            } else { kept.append(w) }
        }
        waiters = kept
    }

    /// Evicts LRU unreferenced sealed objects until `bytes` are freed.
    mutating func evict(atLeast bytes: Int, into out: inout [StoreAction]) -> Int {
        var freed = 0
        while freed < bytes {
            let before = allocator.used
            guard evictOne(into: &out) else { break }
            freed += before - allocator.used
        }
        return freed
    }

    mutating func evictOne(into out: inout [StoreAction]) -> Bool {
        guard let (id, e) = objects.filter({ $0.value.state == .sealed && freeable($0.key, $0.value) })
            .min(by: { $0.value.lastUse < $1.value.lastUse }) else { return false }
        evictions += 1
        evictedBytes += e.location.reserved
        remove(id)
        notifyDeleted(id, into: &out)
        out.append(.removed(id))
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
        for (id, n) in client.references { objects[id]?.refCount -= n }
        waiters.removeAll { $0.client == c }
    }

    mutating func tick() -> UInt64 { useClock &+= 1; return useClock }

    /// Throws a description of the first broken invariant (tests).
    public func checkInvariants() -> String? {
        let reserved = objects.values.reduce(0) { $0 + $1.location.reserved }
        if reserved != allocator.used { return "allocator has \(allocator.used) bytes used, objects reserve \(reserved)" }
        for (id, e) in objects {
            let held = clients.values.reduce(0) { $0 + ($1.references[id] ?? 0) }
            if held != e.refCount { return "\(id): refCount \(e.refCount) but clients hold \(held)" }
            if e.state == .created && e.refCount != 0 { return "\(id): unsealed but referenced" }
        }
        return nil
    }
}
