#if canImport(Glibc)
import Glibc
#endif
import CPlenumShim
import CURing
import Logging
import PlenumCluster
import PlenumMemory
import PlenumRegion
import PlenumRing
import PlenumStore
import PlenumWire

/// `plenum store`: the I/O shell around `ClusterCore` and its `StoreCore`
/// (SPEC.md §9.4, §10.2); a single store is a cluster of one.
///
/// One io_uring (liburing) event loop over a Unix stream socket: accept,
/// per-client recv and send, a signalfd for the terminating signals, and a timeout
/// for the earliest get deadline. The region's descriptor reaches each
/// client once, with SCM_RIGHTS, in the greeting. Object bytes never pass
/// through the socket.
///
/// ```
///   accept ─▶ hello+fd ─▶ recv ─▶ frames ─▶ StoreCore.handle ─▶ actions ─▶ send queue
///      ▲                    ▲                                       │
///      └── re-armed         └── re-armed after each completion      └─ one send in flight per client
/// ```
public final class StoreDaemon {

    final class Connection {
        let id: UInt64
        let fd: Int32
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 65536, alignment: 16)
        var input: [UInt8] = []
        var outbox: [[UInt8]] = []
        /// Bytes in `outbox` (the per-client bound, SPEC §9.4 "Limits").
        var outboxBytes = 0
        /// Per outbox frame: descriptors to attach (SCM_RIGHTS), or nil.
        var outboxFDs: [[Int32]?] = []
        var sending: UnsafeMutableRawBufferPointer?
        /// A descriptor message in flight: its msghdr, bytes and descriptors.
        var sendingMessage: (UnsafeMutableRawPointer, [UInt8], [Int32])?
        var sent = 0
        var recvArmed = false
        /// Flush what is queued, then close (protocol error).
        var closing = false
        /// The trust model (SPEC §9.7): whether this client's uid may change
        /// the store (create, write, seal, delete), and whether it holds a
        /// writable descriptor of the region.
        var mayWrite = false
        var writable = false
        /// The peer is gone: close as soon as no send is in flight.
        var dropped = false
        /// A Plasma client (SPEC §11): its frames are Plasma's.
        var plasma: PlasmaSession?
        /// A Plasma subscriber's notification socket: written, never read;
        /// not a core client. `owner` is the client that subscribed.
        var notifyOnly = false
        var owner: UInt64?
        /// Its ring pair, as `endpoints[id]` (set and cleared with it): the
        /// reply path reaches it without a table lookup.
        var rings: RingEndpoint?
        init(id: UInt64, fd: Int32) { self.id = id; self.fd = fd }
        deinit {
            buffer.deallocate()
            sending?.deallocate()
            if let (m, _, fds) = sendingMessage { plenum_fdmsg_free(m); for f in fds { Glibc.close(f) } }
        }
    }

    enum Tag: UInt64 { case accept = 1, recv, send, signal, timer, acceptRetry, heartbeat, bell, retry, plasmaAccept, plasmaAcceptRetry, plasmaRead, idlePoll, metricsFile }

    /// A client's pair of shared-memory rings (SPEC §9.6): requests in,
    /// replies and notifications out, in a memory file only this client and
    /// the store map.
    final class RingEndpoint {
        let memory: MappedMemory
        let doorbell: Int
        /// The client's sleeping word (client writes) and the last of its
        /// values this store woke (SPEC §9.6).
        let sleepWord: Int
        var wokenSleep: UInt64 = 0
        /// The wake word's last value (doorbell + 8, SPEC §9.6).
        var wakes: UInt64 = 0
        var requests: RingConsumer<MappedMemory>
        var replies: RingProducer<MappedMemory>
        /// Frames waiting for room in the reply ring; the first may be
        /// posted up to `pendingOffset` already (SPEC §9.6 pieces).
        var pending: [[UInt8]] = []
        var pendingOffset = 0
        var pendingBytes = 0
        /// The pieces of a request frame longer than a slot.
        var assembler = PieceAssembler(limit: Frame.maxBytes)
        /// Since when replies wait for room without any being taken.
        var stalledSince: UInt64?
        init(memory: MappedMemory, doorbell: Int, sleepWord: Int, requests: RingConsumer<MappedMemory>, replies: RingProducer<MappedMemory>) {
            self.memory = memory
            self.doorbell = doorbell
            self.sleepWord = sleepWord
            self.requests = requests
            self.replies = replies
        }
    }

    static let ringSlots = 64
    static let ringSlotSize = 2048
    static let maxRingClients = 32
    /// A ring client whose replies pile up beyond this is not reading: dropped.
    static let maxPendingReplies = 4096
    /// A socket client's queued replies are bounded in count and bytes
    /// (twice the largest frame): past either it is disconnected.
    static let maxQueuedReplies = 65_536
    static let maxQueuedReplyBytes = max(16 << 20, 2 * Frame.maxBytes)
    /// While replies or peer messages wait for room in a ring, the loop
    /// sleeps and retries at this period instead of spinning.
    static let retryNanos: UInt64 = 1_000_000
    /// Signals that end the daemon cleanly (socket and region removed).
    static let terminatingSignals = [SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF,
                                     SIGXCPU, SIGXFSZ, SIGPWR, SIGSTKFLT, SIGIO]

    public let options: Options
    public let region: Region
    let regionPath: String
    /// The region file, locked (flock) for this daemon's life.
    let regionLockFD: Int32
    /// Whether exit deletes the region file (this daemon made it).
    var ownsRegionFile: Bool
    /// The socket this daemon bound (device, inode): exit removes only it.
    var socketIdentity: (UInt64, UInt64)?
    var core: ClusterCore
    /// This node's directory index, if it keeps one (SPEC §10.4 "Directory index").
    var index: DirectoryIndexWriter?
    /// The view this store publishes for its clients' peeks (SPEC §10.4
    /// "Client peeks"), with an index only: its place, its sequence word,
    /// the `core.peersChanges` and the members it last wrote.
    var clusterView: (layout: ClusterViewLayout, seq: UInt64, written: UInt64, members: [NodeID: ClusterViewLayout.Member])?
    /// What this store counts (SPEC §10.9 "Metrics").
    let metrics: StoreMetrics
    /// Links to the other stores (nil for a single store).
    let peers: PeerLinks?
    /// This life of the node (wall-clock ns at start; SPEC §10.3).
    let incarnation: UInt64
    /// Hop events while a client traces (SPEC §9.2 0x17); the peers share it.
    let trace = HopTraceLog()
    var bellFD: Int32 = -1
    var bellBuffer = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
    var heartbeatSpec = UnsafeMutablePointer<__kernel_timespec>.allocate(capacity: 1)
    var metricsSpec = UnsafeMutablePointer<__kernel_timespec>.allocate(capacity: 1)
    var nextHeartbeat: UInt64 = 0
    var heartbeatArmed = false
    /// Plasma objects sealed with their digest still to take (SPEC §11.3 "Seal").
    var lateDigests = LateDigests()
    /// Create-and-seal batches waiting for their ids' reservations.
    var batches: [UInt64: (client: UInt64, requestId: UInt64, objects: [Wire.InlineObject])] = [:]
    var nextBatch: UInt64 = 1
    /// The action array `apply` hands the core, kept between events (one
    /// allocation fewer per request; a nested `apply` takes a fresh one).
    var spareActions: [ClusterAction] = []
    /// The event array `pollPeers` fills, kept the same way.
    var spareEvents: [ClusterEvent] = []
    var ring = io_uring()
    var listenFD: Int32 = -1
    var signalFD: Int32 = -1
    var connections: [UInt64: Connection] = [:]
    /// Closed connections whose recv is still in the kernel: their buffer must
    /// outlive it, so they are freed when that completion arrives.
    var retired: [UInt64: Connection] = [:]
    var endpoints: [UInt64: RingEndpoint] = [:]
    var acceptRetry = UnsafeMutablePointer<__kernel_timespec>.allocate(capacity: 1)
    let ringBytes: Int
    var lastRingActivity: UInt64 = 0
    /// When the last request frame came over a socket (either protocol).
    var lastSocketRequest: UInt64 = 0
    var nextClient: UInt64 = 1
    var timerSpec = UnsafeMutablePointer<__kernel_timespec>.allocate(capacity: 1)
    var timerArmedFor: UInt64?
    var retrySpec = UnsafeMutablePointer<__kernel_timespec>.allocate(capacity: 1)
    var retryArmed = false
    /// How the loop waits (SPEC §10.1 "Waiting"); a single store is adaptive with bells.
    let wait: WaitPolicy
    /// With bells off: the timer that wakes a sleeping loop to poll the peer rings.
    var idlePollSpec = UnsafeMutablePointer<__kernel_timespec>.allocate(capacity: 1)
    var idlePollArmed = false
    /// Times the loop went to sleep, and woke for an idle poll (status `wait`).
    var sleeps = 0
    var idlePolls = 0
    var warnings = LogLimiter()
    /// The Plasma socket (SPEC §11), and the one this daemon bound.
    var plasmaListenFD: Int32 = -1
    var plasmaSocketIdentity: (UInt64, UInt64)?
    /// Evicted objects kept for Plasma's `-e hashtable://` (SPEC §11.6):
    /// bytes by id, oldest first, and their total.
    var spilled: [ObjectID: (data: [UInt8], metadata: [UInt8], serial: UInt64)] = [:]
    var spillOrder: [(serial: UInt64, id: ObjectID)] = []
    var spillHead = 0
    var spillSerial: UInt64 = 0
    var spilledBytes = 0
    var signalInfo = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 8)
    var running = true
    let logger: Logger

    public init(_ options: Options, logger: Logger = Logger(label: "plenum.store")) throws {
        Self.blockTerminatingSignals()
        self.options = options
        self.logger = logger
        metrics = StoreMetrics(node: options.cluster?.node)
        var w = WaitPolicy(mode: options.cluster.map { $0.config.waitMode(of: $0.node) } ?? .adaptive, bells: options.cluster?.config.bells ?? true)
        // Tuning overrides, for experiments only (SPEC §10.1 "Waiting").
        if let v = envNumber("PLENUM_BUSY_SPIN_NS") { w.busySpin = v }
        if let v = envNumber("PLENUM_SPIN_NS") { w.expectingWindow = v }
        if let v = envNumber("PLENUM_IDLE_SPIN_NS") { w.idleWindow = v }
        wait = w
        guard options.memory > 0 else { throw DaemonError.badOption("--memory must be positive") }
        let line = options.lineSize.bytes
        let heap = (options.memory + 4095) / 4096 * 4096
        let path = options.regionPath ?? "/dev/shm/plenum-store-\(getuid())-\(getpid()).region"
        regionPath = path
        let ringBytes = try RingLayout(base: 0, lineSize: line, slotCount: Self.ringSlots, slotSize: Self.ringSlotSize).totalBytes
        self.ringBytes = ringBytes
        var plan: RingPlan?
        var linkArea = 0
        var indexArea = 0
        var viewArea = 0
        let me = options.cluster?.node ?? 0
        if let (config, _) = options.cluster {
            plan = try RingPlan(config)
            let sizes = RegionPlan(config: config, plan: plan!, node: me)
            linkArea = sizes.links
            indexArea = sizes.index
            viewArea = sizes.view
        }
        // SPEC §10.3 "Region size": header, objects, peer links, directory index, cluster view — nothing else.
        let size = RegionLayout.dataOffset(line: line) + heap + linkArea + indexArea + viewArea
        (regionLockFD, ownsRegionFile) = try Self.lockRegionFile(path, force: options.forceRegion, clusterNode: options.cluster?.node)
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let incarnation = UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
        self.incarnation = incarnation
        // Everything that can fail after the region file is locked undoes
        // the lock and the file it created.
        let made: (region: Region, segment: Segment, peers: PeerLinks?, reachable: Set<NodeID>, index: DirectoryIndexWriter?, view: ClusterViewLayout?)
        do {
            let region = try Region.create(at: path, size: size, lineSize: options.lineSize, owner: me, numaNode: options.numaNode, overwrite: true,
                                           requireBacking: options.prefault)
            // Gone from the directory before anything slow (the populate
            // below): a SIGKILL from here on leaves nothing in /dev/shm.
            if options.unlinkRegionAtStart, options.cluster == nil, ownsRegionFile {
                unlink(path)
                ownsRegionFile = false
            }
            if options.hugePages { try region.mapping.adviseHugePages(subject: path) }
            if options.prefault { try region.mapping.populate(subject: path) }
            let segment = try SegmentTable.append(.raw, name: "objects", length: heap, in: region.memory(), header: region.header)
            if let (config, node) = options.cluster, let plan {
                let links = try SegmentTable.append(.raw, name: "peer-links", length: linkArea, in: region.memory(), header: region.header)
                try PeerLinks.formatHosted(in: region, segment: links, config: config, plan: plan, me: node)
                var index: DirectoryIndexWriter?
                if indexArea > 0 {
                    let seg = try SegmentTable.append(.raw, name: PeerIndexes.segmentName, length: indexArea, in: region.memory(), header: region.header)
                    let layout = DirectoryIndexLayout(base: seg.offset, lineSize: line, entries: config.directoryIndex)!
                    layout.format(incarnation: incarnation, in: region.memory())
                    index = DirectoryIndexWriter(layout: layout)
                }
                var view: ClusterViewLayout?
                if viewArea > 0 {
                    let seg = try SegmentTable.append(.raw, name: ClusterViewLayout.segmentName, length: viewArea, in: region.memory(), header: region.header)
                    view = ClusterViewLayout(base: seg.offset, length: seg.length, size: region.memory().size)
                }
                made = (region, segment, PeerLinks(config: config, plan: plan, me: node, incarnation: incarnation, own: region, logger: logger),
                        Set(config.node(node)!.reach.keys), index, view)
            } else {
                made = (region, segment, nil, [], nil, nil)
            }
        } catch {
            if ownsRegionFile { unlink(path) }
            close(regionLockFD)
            throw error
        }
        region = made.region
        peers = made.peers
        peers?.trace = trace
        let segment = made.segment, reachable = made.reachable
        var cc = ClusterCore.Config(node: me, incarnation: incarnation, reachable: reachable)
        if let config = options.cluster?.config {
            cc.requestTimeout = UInt64(config.requestTimeoutMillis) * 1_000_000
            // The gRPC baseline's unary calls pair a request with its answer
            // from the node asked: no forwarded answers there (SPEC §10.11).
            cc.forwardAcquire = config.transport == .rings
            cc.forwardDelete = config.transport == .rings
            cc.forwardCreate = config.transport == .rings
            cc.views = config.transport == .rings
            // A node may start into a running cluster: it judges no
            // reservation before it met, or found absent, every other node.
            cc.awaiting = Set(config.nodes.map(\.id)).subtracting([me])
        }
        core = ClusterCore(config: cc, store: .init(base: segment.offset, capacity: segment.length, lineSize: line))
        index = made.index
        core.indexesDirectory = index != nil
        // Peers' indexes are read where they have one (§10.4); not over the
        // gRPC baseline, which measures what messages cost.
        if let peers = made.peers, options.cluster?.config.transport == .rings { core.peeker = PeerIndexes(links: peers) }
        if let v = made.view {
            clusterView = (v, 0, 0, [:])
            publishView()
        }
    }

    deinit {
        timerSpec.deallocate()
        retrySpec.deallocate()
        idlePollSpec.deallocate()
        acceptRetry.deallocate()
        signalInfo.deallocate()
        bellBuffer.deallocate()
        heartbeatSpec.deallocate()
        metricsSpec.deallocate()
    }

    /// Blocks the terminating signals (and SIGPIPE) in this thread; returns
    /// the set. Called first thing in `init`, so a signal during the start
    /// (populating a large region takes a second) waits for the signalfd
    /// and ends in a clean shutdown instead of leaving the region behind.
    @discardableResult
    static func blockTerminatingSignals() -> sigset_t {
        var mask = sigset_t()
        sigemptyset(&mask)
        for s in terminatingSignals { sigaddset(&mask, s) }
        sigaddset(&mask, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &mask, nil)
        return mask
    }

    func listen() throws {
        (listenFD, socketIdentity) = try bindSocket(options.socketPath)
        if let plasma = options.plasmaSocketPath { (plasmaListenFD, plasmaSocketIdentity) = try bindSocket(plasma) }
    }

    /// A listening Unix socket at `path` (refusing a live one), and the
    /// identity of the file it made.
    func bindSocket(_ path: String) throws -> (Int32, (UInt64, UInt64)?) {
        try Self.claimSocketPath(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw DaemonError.system(.last("socket")) }
        let old = umask(0o777 & ~options.socketMode)  // socket file 0600 by default
        let ok: Int32
        do { ok = try UnixSocket.withAddress(path) { bind(fd, $0, $1) } } catch {
            umask(old)
            close(fd)
            throw DaemonError.badOption(error.description)
        }
        umask(old)
        guard ok == 0 else {
            let e = DaemonError.system(.last("bind", subject: path, hint: "is another store using this socket path?"))
            close(fd)
            throw e
        }
        let identity = Self.identity(path)
        guard Glibc.listen(fd, 128) == 0 else { throw DaemonError.system(.last("listen")) }
        return (fd, identity)
    }

    func shutdown() {
        if let f = options.metricsFile { unlink(f) }
        peers?.stopCarrier()
        for c in connections.values { close(c.fd) }
        connections.removeAll()
        if listenFD >= 0 {
            close(listenFD)
            // Only the socket this daemon bound: never one that replaced it.
            if let mine = socketIdentity, let now = Self.identity(options.socketPath), mine == now { unlink(options.socketPath) }
        }
        if plasmaListenFD >= 0, let path = options.plasmaSocketPath {
            close(plasmaListenFD)
            if let mine = plasmaSocketIdentity, let now = Self.identity(path), mine == now { unlink(path) }
        }
        if signalFD >= 0 { close(signalFD) }
        if bellFD >= 0, let me = options.cluster.flatMap({ $0.config.node($0.node) }) { close(bellFD); unlink(me.bell) }
        if ownsRegionFile { unlink(regionPath) }
        close(regionLockFD)
        logger.info("stopped")
    }

}

public enum DaemonError: Error, CustomStringConvertible {
    case system(SystemCallError)
    case badOption(String)
    public var description: String {
        switch self {
        case .system(let e): return e.description
        case .badOption(let s): return s
        }
    }
}
