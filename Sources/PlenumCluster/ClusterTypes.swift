import PlenumStore

/// What a node knows of a peer's memory, from the peer's heartbeat line
/// (SPEC §10.3): placement of remote creates picks the most free.
public struct PeerLoad: Equatable, Sendable {
    public var capacity: Int
    public var used: Int
    public var objects: Int
    public var largestFree: Int
    public var subscribers: Bool
    public var free: Int { capacity - used }
    public init(capacity: Int, used: Int, objects: Int, largestFree: Int, subscribers: Bool) {
        self.capacity = capacity
        self.used = used
        self.objects = objects
        self.largestFree = largestFree
        self.subscribers = subscribers
    }
}

/// A live peer as the shell attached it.
public struct PeerInfo: Equatable, Sendable {
    public var incarnation: UInt64
    /// The region handle clients use for the peer's memory (SPEC §10.7).
    public var region: Int
    /// The size of the peer's region when this node maps it; nil when the
    /// peer's memory is not reachable from here (one-way reach, or a peer
    /// reached through a relay).
    public var regionSize: Int?
    public init(incarnation: UInt64, region: Int, regionSize: Int?) {
        self.incarnation = incarnation
        self.region = region
        self.regionSize = regionSize
    }
}

/// Events into the cluster core (SPEC §10.2). Time comes with each event.
public enum ClusterEvent: Equatable, Sendable {
    /// A local client event (connected, disconnected, request, tick).
    case local(StoreEvent)
    /// A cluster-only request of a local client.
    case cluster(ClientID, requestId: UInt64, ClusterRequest)
    /// The shell attached both rings of a peer and received its hello.
    case peerUp(NodeID, PeerInfo)
    /// The peer's heartbeat stopped (or its rings failed): it is dead.
    case peerDown(NodeID, why: String)
    /// A heartbeat line was read.
    case peerLoad(NodeID, PeerLoad)
    /// A peer of `Config.awaiting` that never came up has been silent for
    /// `dead_after_ms` since this node started: not running (SPEC §10.4
    /// "Starting").
    case peerAbsent(NodeID)
    /// A decoded message from a live peer.
    case message(from: NodeID, correlation: UInt64, PeerMessage)
    /// The shell's answer to `.checkDigest`.
    case digestChecked(token: UInt64, ok: Bool)
    /// Reserve `ids` at their homes for a create-and-seal (the shell
    /// writes and seals the reserved ones, then calls `sealLocal`).
    case reserveBatch(token: UInt64, ids: [ObjectID])
}

/// Actions out of the cluster core.
public enum ClusterAction: Equatable, Sendable {
    /// To a local client (reply or notification), as from `StoreCore`.
    case local(StoreAction)
    /// Post a message to a peer's ring (correlation 0 for one-way).
    case send(NodeID, correlation: UInt64, PeerMessage)
    /// Invalidate the range of `location` in the peer region `region`,
    /// fence, compute its CRC32C and compare with `digest` (SPEC §10.8);
    /// answer with `.digestChecked`.
    case checkDigest(token: UInt64, region: Int, location: ObjectLocation, digest: UInt64)
    /// Flush (write back and drop) this node's cached lines of a range:
    /// `region` 0, a local range a peer writes — when it is granted to the
    /// peer (no dirty line of an earlier use may land over its bytes) and
    /// before sealing it (drop stale lines; a pure invalidate by then);
    /// else (the handle of a peer's region, §10.7) a range a local client
    /// was creating there and aborts or dies with — before the abort leaves.
    case invalidate(ObjectLocation)
    /// The answer to `.reserveBatch`: per id nil (reserved) or the error.
    case batchReserved(token: UInt64, [StoreError?])
}

/// Counters for `plenum status` and tests.
public struct ClusterCounters: Equatable, Sendable {
    public var messagesIn = 0
    public var messagesOut = 0
    public var unexpectedReplies = 0
    public var refusedMessages = 0
    public var digestMismatches = 0
    public var peerTimeouts = 0
    public var deaths = 0
    public var joins = 0
    /// Lookups answered from a home's directory index, and peeks that had
    /// to ask the home (SPEC §10.4 "Directory index").
    public var indexPeeks = 0
    public var indexMisses = 0
    /// Messages sent other than notifications: a client request that
    /// changed it (or `indexPeeks`, `indexMisses`) took a peer's part
    /// (metrics' `scope`, SPEC §10.9).
    public var peerWork = 0
    public init() {}
}

extension StoreError {
    /// Rebuilds an error from a peer's §9.3 code, for the object `id`.
    static func fromCode(_ code: UInt16, id: ObjectID, node: NodeID) -> StoreError {
        switch code {
        case 1: return .alreadyExists(id)
        case 2: return .notFound(id)
        case 13: return .nodeUnavailable(node, why: "the cluster's membership changed while \(id) was being reserved; retry")
        case 3: return .notSealed(id)
        case 4: return .alreadySealed(id)
        case 5: return .remote(code: 5, text: "object \(id) is in use on node \(node): release it first")
        case 6: return .notCreator(id)
        case 7: return .noReference(id)
        case 10: return .remote(code: 10, text: "node \(node) is out of memory for \(id): release or delete objects there, or name another node")
        default: return .remote(code: code, text: "node \(node) refused \(id) with error \(code)")
        }
    }

    /// The §9.3 code of this error on a peer ring.
    var peerCode: UInt16 {
        switch self {
        case .alreadyExists: return 1
        case .notFound: return 2
        case .notSealed: return 3
        case .alreadySealed: return 4
        case .inUse: return 5
        case .notCreator: return 6
        case .noReference: return 7
        case .invalidSize: return 8
        case .tooLarge: return 9
        case .outOfMemory, .fragmented: return 10
        case .unknownClient: return 11
        case .tooManyIds, .tooManyWaiting: return 12
        case .nodeUnavailable: return 13
        case .digestMismatch: return 14
        case .remote(let c, _): return c
        }
    }
}

/// Reads homes' directory indexes for a `ClusterCore` (SPEC §10.4
/// "Directory index"). The shell's implementation maps the homes' regions;
/// the simulator's reads its model. nil: ask the home by message (no index,
/// not reachable, a new life not mapped yet, a bucket being written).
public protocol DirectoryPeeker: AnyObject, Sendable {
    func peek(_ id: ObjectID, at home: NodeID, incarnation: UInt64) -> IndexAnswer?
}
