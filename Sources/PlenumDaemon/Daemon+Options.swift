import Glibc
import CPlenumShim
import CURing
import Logging
import PlenumCluster
import PlenumMemory
import PlenumRegion
import PlenumRing
import PlenumStore
import PlenumWire

/// What a store is started with: the command line, or one node of a cluster file.
extension StoreDaemon {
    public struct Options: Sendable {
        public var socketPath: String
        public var memory: Int
        public var regionPath: String?
        public var numaNode: Int?
        public var lineSize: LineSize = .default
        /// A cluster member: the cluster file and this node's id. Socket,
        /// region, memory, line size and NUMA node come from the file.
        public var cluster: (config: ClusterConfig, node: NodeID)?
        /// A ring client that takes none of its waiting replies for this
        /// long is not reading: disconnected (SPEC §9.6 "Limits").
        public var replyStallNanos: UInt64 = 10_000_000_000
        /// Reformat an existing `regionPath` that is not this node's own
        /// stale region (never one a running store holds).
        public var forceRegion = false
        /// Remove the region file as soon as it is made (clients get it as a
        /// descriptor): nothing is left in /dev/shm even after SIGKILL.
        /// Single stores only (peers map regions by path). SPEC §11.7.
        public var unlinkRegionAtStart = false
        /// Allocate and map every page of the region at start (SPEC §9.4
        /// "Memory"): creates then copy bytes without page faults, and a
        /// /dev/shm too small for the region fails the start, not a later write.
        public var prefault = true
        /// Ask for transparent huge pages over the region (`MADV_HUGEPAGE`).
        public var hugePages = false
        /// Mode of the socket file: 0600 admits this uid only; 0660/0666
        /// admit others, who then may only read unless listed below.
        public var socketMode: mode_t = 0o600
        /// Uids (besides the daemon's own) that may change the store.
        public var writerUIDs: Set<uid_t> = []
        /// Also serve Plasma 11's client protocol on this socket (SPEC §11).
        public var plasmaSocketPath: String?
        /// Rewritten every second with `metricsText()` (node_exporter's
        /// textfile collector, SPEC §10.9 "Metrics"); removed at shutdown.
        public var metricsFile: String?
        /// The capacity Plasma clients are told (default: `memory`).
        public var plasmaCapacity: Int?
        /// Keep evicted objects' bytes in this process, up to this many bytes,
        /// and bring them back on a Plasma get (`-e hashtable://`, SPEC §11.6).
        public var spillLimit: Int?
        public init(socketPath: String, memory: Int) {
            self.socketPath = socketPath
            self.memory = memory
        }

        /// The options of node `node` of a cluster file.
        public init(cluster config: ClusterConfig, node: NodeID) throws {
            guard let n = config.node(node) else { throw DaemonError.badOption(ClusterConfigError.unknownNode(node).description) }
            socketPath = n.socket
            memory = n.memory
            regionPath = n.region
            numaNode = n.numaNode
            lineSize = try LineSize(config.lineSize)
            cluster = (config, node)
        }
    }
}
