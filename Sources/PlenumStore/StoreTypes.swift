/// A client of one store, as numbered by the daemon.
public typealias ClientID = UInt64

/// Where an object's bytes are: offsets into the store's region.
public struct ObjectLocation: Equatable, Sendable {
    public var offset: Int
    public var dataSize: Int
    public var metadataSize: Int
    /// Bytes reserved (padded to whole lines).
    public var reserved: Int
    /// Which mapped region `offset` is in, as the serving store numbers them
    /// for its clients (SPEC §10.7): 0 is the store's own region; a peer's
    /// region gets a fresh handle each time it is (re)mapped.
    public var region: Int
    public var metadataOffset: Int { offset + dataSize }
    public var end: Int { offset + dataSize + metadataSize }

    public init(offset: Int, dataSize: Int, metadataSize: Int, reserved: Int, region: Int = 0) {
        self.offset = offset
        self.dataSize = dataSize
        self.metadataSize = metadataSize
        self.reserved = reserved
        self.region = region
    }
}

public enum ObjectState: String, Sendable, Equatable { case created, sealed }

/// One row of `list` (Plasma's ObjectTableEntry, as a client sees it).
public struct ObjectInfo: Equatable, Sendable {
    public var id: ObjectID
    public var location: ObjectLocation
    public var state: ObjectState
    public var refCount: Int
    public var createdNanos: UInt64
    /// Seal time − create time; nil while unsealed.
    public var constructNanos: UInt64?
    public var digest: UInt64?

    public init(id: ObjectID, location: ObjectLocation, state: ObjectState, refCount: Int, createdNanos: UInt64,
                constructNanos: UInt64?, digest: UInt64?) {
        self.id = id
        self.location = location
        self.state = state
        self.refCount = refCount
        self.createdNanos = createdNanos
        self.constructNanos = constructNanos
        self.digest = digest
    }
}

/// Requests a client can make (SPEC §9, after Plasma's client API).
public enum StoreRequest: Equatable, Sendable {
    case create(ObjectID, dataSize: Int, metadataSize: Int)
    case seal(ObjectID, digest: UInt64)
    case abort(ObjectID)
    /// Waits up to `timeoutMs` (0: poll, −1: forever) until every id is sealed.
    case get([ObjectID], timeoutMs: Int64)
    case release(ObjectID)
    case contains(ObjectID)
    case delete([ObjectID])
    case list
    case evict(bytes: Int)
    case subscribe
    case stats
    /// Marks the objects as just used (LRU), like Plasma's Refresh.
    case refresh([ObjectID])
}

public struct StoreStats: Equatable, Sendable {
    public var capacity: Int
    public var used: Int
    public var objects: Int
    public var sealed: Int
    public var clients: Int
    public var evictions: Int
    public var evictedBytes: Int
    public var allocator: AllocatorStats

    public init(capacity: Int, used: Int, objects: Int, sealed: Int, clients: Int, evictions: Int, evictedBytes: Int,
                allocator: AllocatorStats) {
        self.capacity = capacity
        self.used = used
        self.objects = objects
        self.sealed = sealed
        self.clients = clients
        self.evictions = evictions
        self.evictedBytes = evictedBytes
        self.allocator = allocator
    }
}

public enum StoreResponse: Equatable, Sendable {
    case created(ObjectLocation)
    case sealed
    case aborted
    /// Per requested id, in request order: its location, or nil if it was not
    /// sealed before the timeout. A reference is held for every non-nil one.
    case objects([ObjectLocation?])
    case released
    case contains(Bool)
    /// Per requested id, in request order: nil on success, else why not.
    case deleted([StoreError?])
    case list([ObjectInfo])
    case evicted(bytes: Int)
    case subscribed
    case stats(StoreStats)
    case refreshed
    /// Per object of a create-and-seal (performed by the daemon shell around
    /// create + seal; the core itself never returns this): nil or the error.
    case createdAndSealed([StoreError?])
    /// Every live node reached the barrier (cluster only).
    case barrierPassed(nodes: Int)
    case error(StoreError)
}

/// Requests only a cluster member answers (SPEC §10.6).
public enum ClusterRequest: Equatable, Sendable {
    /// Create on a named node (its memory), or anywhere (`node` nil): local
    /// first, then the reachable peer with the most free memory.
    case createOn(ObjectID, dataSize: Int, metadataSize: Int, node: UInt32?)
    /// Waits until every live node of the cluster reached barrier `name`.
    case barrier(name: UInt64)
}

public enum StoreNotification: Equatable, Sendable {
    case sealed(ObjectID, ObjectLocation)
    case deleted(ObjectID)
}

/// What the core asks its I/O shell to do.
public enum StoreAction: Equatable, Sendable {
    case reply(ClientID, requestId: UInt64, StoreResponse)
    case notify(ClientID, StoreNotification)
    /// A sealed object left the store (delete or eviction). Single-node
    /// shells ignore it; the cluster core unpublishes the id (SPEC §10.4).
    case removed(ObjectID)
    /// An object is being evicted: its bytes are still in place at `location`
    /// until the shell returns (a shell with a spill store copies them out;
    /// SPEC §11.6). A `.removed` follows.
    case evicted(ObjectID, ObjectLocation)
}

public enum StoreEvent: Equatable, Sendable {
    case connected(ClientID)
    case disconnected(ClientID)
    case request(ClientID, requestId: UInt64, StoreRequest)
    /// Time passed (get timeouts).
    case tick
}

/// Why a request failed. Each says what to do.
public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    case alreadyExists(ObjectID)
    case notFound(ObjectID)
    case notSealed(ObjectID)
    case alreadySealed(ObjectID)
    case inUse(ObjectID, references: Int)
    case notCreator(ObjectID)
    case noReference(ObjectID)
    case invalidSize(data: Int, metadata: Int)
    case tooLarge(requested: Int, capacity: Int)
    case outOfMemory(requested: Int, evictable: Int)
    /// Enough bytes are free or evictable, but objects in use split them:
    /// no set of victims yields one block of `requested` bytes.
    case fragmented(requested: Int, largestPossible: Int)
    case unknownClient(ClientID)
    case tooManyIds(Int, limit: Int)
    /// The client's waiting gets would name more ids than the store holds for one client.
    case tooManyWaiting(Int, limit: Int)
    /// A peer needed for the request is down, unreachable or not a member.
    case nodeUnavailable(UInt32, why: String)
    /// A sealed object's bytes no longer match the digest taken at seal.
    case digestMismatch(ObjectID)
    /// A per-object error as decoded by a client: the wire code and text.
    case remote(code: UInt16, text: String)

    public var description: String {
        switch self {
        case .alreadyExists(let id): return "object \(id) already exists: choose another id or delete it first"
        case .notFound(let id): return "object \(id) does not exist"
        case .notSealed(let id): return "object \(id) is not sealed yet: seal it (or abort it) first"
        case .alreadySealed(let id): return "object \(id) is already sealed: sealed objects are immutable"
        case .inUse(let id, let n): return "object \(id) is in use (\(n) reference(s)): release it first"
        case .notCreator(let id): return "object \(id) was created by another client: only its creator may seal or abort it"
        case .noReference(let id): return "this client holds no reference to \(id): get it before releasing it"
        case .invalidSize(let d, let m): return "invalid object size (data \(d), metadata \(m)): sizes must be ≥ 0 and their sum must fit in an Int"
        case .tooLarge(let r, let c): return "object of \(r) bytes exceeds the store's capacity of \(c) bytes: start the store with a larger --memory"
        case .outOfMemory(let r, let e): return "out of memory: \(r) bytes needed, only \(e) bytes could be freed by evicting unused objects; release or delete objects"
        case .fragmented(let r, let l): return "out of memory: no contiguous block of \(r) bytes can be made — objects in use (referenced or unsealed) split the memory, and evicting every unused object would leave at most \(l) contiguous bytes; nothing was evicted; release objects or start the store with a larger --memory"
        case .tooManyWaiting(let n, let l): return "this client's blocking gets would wait for \(n) ids; at most \(l) at once: wait for fewer ids, or with timeout 0"
        case .unknownClient(let c): return "client \(c) is not connected"
        case .tooManyIds(let n, let l): return "\(n) ids in one request; at most \(l)"
        case .nodeUnavailable(let n, let why): return "node \(n) is unavailable: \(why); retry, or name another node"
        case .digestMismatch(let id): return "object \(id) is corrupt: its bytes no longer match the digest taken when it was sealed; delete it and create it again"
        case .remote(_, let text): return text
        }
    }
}
