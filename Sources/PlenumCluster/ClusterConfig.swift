/// The cluster file (SPEC §10.1): nodes, their memory, sockets, NUMA
/// nodes and reach (which other nodes' memory each maps, by its own path).
public struct ClusterConfig: Equatable, Sendable {
    public struct Node: Equatable, Sendable {
        public var id: NodeID
        public var socket: String
        /// This node's own region, as this node names it.
        public var region: String
        public var memory: Int
        public var numaNode: Int?
        /// Peers whose memory this node maps, with the path on this node.
        public var reach: [NodeID: String]
        /// `host:port` of this node's gRPC peer endpoint (transports
        /// `grpc-unary` and `grpc-stream` only; SPEC §10.11).
        public var grpc: String?
        /// The CPU this node's loop is pinned to (SPEC §10.1 "Waiting";
        /// required when the node waits "dedicated").
        public var cpu: Int?
        /// This node's own `wait`, overriding the cluster's (a host that
        /// gives one store a CPU of its own).
        public var wait: WaitMode?
        /// The doorbell datagram socket (peers on the same host wake a
        /// sleeping store through it; SPEC §10.3).
        public var bell: String { socket + ".bell" }
        public init(id: NodeID, socket: String, region: String, memory: Int, numaNode: Int? = nil, reach: [NodeID: String] = [:]) {
            self.id = id
            self.socket = socket
            self.region = region
            self.memory = memory
            self.numaNode = numaNode
            self.reach = reach
        }
    }

    public var lineSize = 128
    public var heartbeatMillis = 50
    public var deadAfterMillis = 1000
    public var ringSlots = 128
    public var ringSlotSize = 1024
    /// A peer request unanswered this long fails with `nodeUnavailable`.
    public var requestTimeoutMillis = 5000
    /// What carries peer messages (SPEC §10.11): the rings, or the gRPC
    /// baseline (built separately, `plenum-grpc`).
    public var transport = PeerTransport.rings
    /// How a store waits for work (SPEC §10.1 "Waiting").
    public var wait = WaitMode.adaptive
    /// Stores on one host ring each other's bell when they post to a
    /// sleeping peer; false (every multi-host deployment): a sleeping store
    /// polls its peer rings on a short timer instead (SPEC §10.3).
    public var bells = true
    /// Entries each node's directory index holds before entries overflow
    /// into private memory (SPEC §10.4 "Directory index"); 0: no index,
    /// every remote lookup is a message. Rounded up to whole buckets.
    public var directoryIndex = 65_536
    public static let maxDirectoryIndex = 1 << 24
    public var nodes: [Node]

    public init(nodes: [Node]) { self.nodes = nodes }

    public func node(_ id: NodeID) -> Node? { nodes.first { $0.id == id } }

    /// How node `id` waits: its own `wait`, else the cluster's.
    public func waitMode(of id: NodeID) -> WaitMode { node(id)?.wait ?? wait }

    /// N nodes on this host: regions in `shm`, sockets and logs in `dir`,
    /// every node reaching every other (the embedded default).
    /// With a gRPC transport, node i listens on 127.0.0.1:`grpcPortBase`+i.
    public static func local(nodes count: Int, memory: Int, dir: String, shm: String = "/dev/shm", tag: String,
                             transport: PeerTransport = .rings, grpcPortBase: Int = 7400) -> ClusterConfig {
        let regions = (0..<count).map { "\(shm)/plenum-\(tag)-node\($0).region" }
        var c = ClusterConfig(nodes: (0..<count).map { i in
            var reach: [NodeID: String] = [:]
            for j in 0..<count where j != i { reach[NodeID(j)] = regions[j] }
            var n = Node(id: NodeID(i), socket: "\(dir)/node\(i).sock", region: regions[i], memory: memory, reach: reach)
            if transport != .rings { n.grpc = "127.0.0.1:\(grpcPortBase + i)" }
            return n
        })
        c.transport = transport
        return c
    }

    // MARK: TOML

    public func toml() -> String {
        var s = """
        # Plenum cluster file (SPEC §10.1)
        [cluster]
        line_size = \(lineSize)
        heartbeat_ms = \(heartbeatMillis)
        dead_after_ms = \(deadAfterMillis)
        ring_slots = \(ringSlots)
        ring_slot_size = \(ringSlotSize)
        request_timeout_ms = \(requestTimeoutMillis)
        transport = "\(transport.rawValue)"
        wait = "\(wait.rawValue)"
        bells = \(bells)
        directory_index = \(directoryIndex)

        """
        for n in nodes {
            s += "\n[[node]]\nid = \(n.id)\nsocket = \"\(n.socket)\"\nregion = \"\(n.region)\"\nmemory = \(n.memory)\n"
            if let numa = n.numaNode { s += "numa_node = \(numa)\n" }
            if let cpu = n.cpu { s += "cpu = \(cpu)\n" }
            if let w = n.wait { s += "wait = \"\(w.rawValue)\"\n" }
            if let g = n.grpc { s += "grpc = \"\(g)\"\n" }
            if !n.reach.isEmpty {
                s += "[node.reach]\n"
                for (p, path) in n.reach.sorted(by: { $0.key < $1.key }) { s += "\(p) = \"\(path)\"\n" }
            }
        }
        return s
    }

    public static func parse(_ text: String) throws(ClusterConfigError) -> ClusterConfig {
        let root: [String: TOML.Value]
        do { root = try TOML.parse(text) } catch { throw .syntax(error.description) }
        for key in root.keys where !["cluster", "node"].contains(key) {
            if key == "pool" { throw .unsupported("[[pool]] regions (owned by no node) are not supported yet; give each region an owning node") }
            throw .unknownKey(key)
        }
        var c = ClusterConfig(nodes: [])
        if case .table(let t)? = root["cluster"] {
            for (k, v) in t {
                if k == "wait" {
                    guard case .string(let name) = v, let w = WaitMode(rawValue: name) else {
                        throw .badValue("cluster.wait must be one of \(WaitMode.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
                    }
                    c.wait = w
                    continue
                }
                if k == "bells" {
                    guard case .bool(let b) = v else { throw .badValue("cluster.bells must be true or false") }
                    c.bells = b
                    continue
                }
                if k == "transport" {
                    guard case .string(let name) = v, let tr = PeerTransport(rawValue: name) else {
                        throw .badValue("cluster.transport must be one of \(PeerTransport.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
                    }
                    c.transport = tr
                    continue
                }
                guard case .int(let i) = v else { throw .badValue("cluster.\(k) must be an integer") }
                switch k {
                case "line_size": c.lineSize = i
                case "heartbeat_ms": c.heartbeatMillis = i
                case "dead_after_ms": c.deadAfterMillis = i
                case "ring_slots": c.ringSlots = i
                case "ring_slot_size": c.ringSlotSize = i
                case "request_timeout_ms": c.requestTimeoutMillis = i
                case "directory_index": c.directoryIndex = i
                default: throw .unknownKey("cluster.\(k)")
                }
            }
        }
        guard case .array(let nodes)? = root["node"], !nodes.isEmpty else { throw .badValue("no [[node]] in the cluster file") }
        for entry in nodes {
            guard case .table(let t) = entry else { throw .badValue("node must be written as [[node]] tables") }
            func str(_ k: String) throws(ClusterConfigError) -> String {
                guard case .string(let s)? = t[k], !s.isEmpty else { throw .badValue("every [[node]] needs \(k) = \"…\"") }
                return s
            }
            guard case .int(let id)? = t["id"], id >= 0, id < 64 else { throw .badValue("every [[node]] needs id = 0…63") }
            var memory = 0
            switch t["memory"] {
            case .int(let m)?: memory = m
            case .string(let s)?: memory = try parseBytes(s)
            default: throw .badValue("node \(id) needs memory = bytes (e.g. \"256M\")")
            }
            guard memory > 0 else { throw .badValue("node \(id): memory must be positive") }
            var node = Node(id: NodeID(id), socket: try str("socket"), region: try str("region"), memory: memory)
            switch t["numa_node"] {
            case .int(let numa)?: node.numaNode = numa
            case nil: break
            default: throw .badValue("node \(id): numa_node must be an integer")
            }
            switch t["grpc"] {
            case .string(let g)?: node.grpc = g
            case nil: break
            default: throw .badValue("node \(id): grpc must be \"host:port\"")
            }
            switch t["cpu"] {
            case .int(let cpu)?: node.cpu = cpu
            case nil: break
            default: throw .badValue("node \(id): cpu must be an integer (a CPU number, as taskset counts)")
            }
            switch t["wait"] {
            case .string(let name)? where WaitMode(rawValue: name) != nil: node.wait = WaitMode(rawValue: name)
            case nil: break
            default: throw .badValue("node \(id): wait must be one of \(WaitMode.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
            }
            if let r = t["reach"], case .table = r {} else if t["reach"] != nil { throw .badValue("node \(id): reach must be a table") }
            if case .table(let reach)? = t["reach"] {
                for (k, v) in reach {
                    guard let peer = UInt32(k), case .string(let path) = v, !path.isEmpty else {
                        throw .badValue("node \(id): reach entries are `PEER_ID = \"path to its region on this node\"`")
                    }
                    node.reach[peer] = path
                }
            }
            for k in t.keys where !["id", "socket", "region", "memory", "numa_node", "reach", "grpc", "cpu", "wait"].contains(k) { throw .unknownKey("node.\(k)") }
            c.nodes.append(node)
        }
        try c.validate()
        return c
    }

    static func parseBytes(_ s: String) throws(ClusterConfigError) -> Int {
        var text = s.uppercased()
        if text.hasSuffix("IB") { text.removeLast(2) } else if text.hasSuffix("B") { text.removeLast() }
        var scale = 1
        if let u = text.last, let k = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30][String(u)] { scale = k; text.removeLast() }
        guard let n = Int(text), n > 0, n <= Int.max / scale else { throw .badValue("cannot read size \"\(s)\" (e.g. 512M, 2G)") }
        return n * scale
    }

    /// Ids unique, reach names known nodes, line size allowed, geometry
    /// sane, and every pair of nodes shares memory for its rings.
    public func validate() throws(ClusterConfigError) {
        var seen = Set<NodeID>()
        for n in nodes {
            guard seen.insert(n.id).inserted else { throw .badValue("node id \(n.id) appears twice") }
        }
        for n in nodes {
            for p in n.reach.keys {
                guard seen.contains(p) else { throw .badValue("node \(n.id) reaches node \(p), which is not in the file") }
                guard p != n.id else { throw .badValue("node \(n.id) lists itself in reach") }
            }
        }
        guard [64, 128, 256].contains(lineSize) else { throw .badValue("line_size must be 64, 128 or 256") }
        guard heartbeatMillis > 0, deadAfterMillis > 2 * heartbeatMillis else {
            throw .badValue("dead_after_ms must exceed two heartbeats (heartbeat_ms = \(heartbeatMillis))")
        }
        guard directoryIndex >= 0, directoryIndex <= Self.maxDirectoryIndex else {
            throw .badValue("directory_index must be 0 (no index) … \(Self.maxDirectoryIndex) entries")
        }
        guard requestTimeoutMillis >= 10 else { throw .badValue("request_timeout_ms must be at least 10") }
        guard ringSlots >= 8, ringSlots <= 4096, ringSlots & (ringSlots - 1) == 0 else { throw .badValue("ring_slots must be a power of two in 8…4096") }
        guard ringSlotSize >= 1024, ringSlotSize <= 65536, ringSlotSize % lineSize == 0 else {
            throw .badValue("ring_slot_size must be a multiple of line_size in 1024…65536 (a list chunk needs 1024)")
        }
        _ = try RingPlan(self)
        for n in nodes {
            if let cpu = n.cpu { guard cpu >= 0, cpu < 4096 else { throw .badValue("node \(n.id): cpu = \(cpu) is not a CPU number") } }
            if waitMode(of: n.id) == .dedicated, n.cpu == nil {
                throw .badValue("wait = \"dedicated\" pins a store to a CPU of its own: node \(n.id) needs cpu = N")
            }
        }
        var byCPU: [Int: NodeID] = [:]
        for n in nodes where waitMode(of: n.id) == .dedicated {
            if let other = byCPU[n.cpu!] { throw .badValue("wait = \"dedicated\": nodes \(other) and \(n.id) both name cpu = \(n.cpu!); a dedicated store needs a CPU of its own") }
            byCPU[n.cpu!] = n.id
        }
        if transport != .rings {
            for n in nodes {
                guard let g = n.grpc else { throw .badValue("transport \"\(transport.rawValue)\" needs grpc = \"host:port\" on every [[node]] (node \(n.id) has none)") }
                guard Self.hostPort(g) != nil else { throw .badValue("node \(n.id): grpc = \"\(g)\" is not host:port (port 1…65535)") }
            }
        }
    }

    /// `host:port` → its parts, or nil.
    public static func hostPort(_ s: String) -> (host: String, port: Int)? {
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), port > 0, port < 65536 else { return nil }
        let host = String(s[..<colon])
        return host.isEmpty ? nil : (host, port)
    }
}

/// How a store waits for work (SPEC §10.1 "Waiting").
public enum WaitMode: String, CaseIterable, Sendable {
    /// For hosts with fewer CPUs than busy processes (development machines,
    /// several stores per host): poll while work is expected, yield the CPU
    /// at every empty poll, sleep soon when idle.
    case adaptive
    /// For deployments that give each store a CPU of its own (as DPDK or
    /// iceoryx do): the loop is pinned to the node's `cpu` and never sleeps.
    case dedicated
}

/// What carries the peer messages of §10.5 between stores (SPEC §10.11).
/// Liveness (heartbeats, hellos) and object memory stay in shared memory
/// whichever it is.
public enum PeerTransport: String, CaseIterable, Sendable {
    /// The per-pair rings in shared memory (the default).
    case rings
    /// gRPC over HTTP/2, one unary call per message (the baseline).
    case grpcUnary = "grpc-unary"
    /// gRPC over HTTP/2, one bidirectional stream per pair of nodes.
    case grpcStream = "grpc-stream"
}

public enum ClusterConfigError: Error, CustomStringConvertible, Equatable {
    case syntax(String)
    case unknownKey(String)
    case badValue(String)
    case unsupported(String)
    case noSharedMemory(NodeID, NodeID)
    case unknownNode(NodeID)

    public var description: String {
        switch self {
        case .syntax(let s): return s
        case .unknownKey(let k): return "cluster file: unknown key \(k) (see SPEC §10.1)"
        case .badValue(let s): return "cluster file: \(s)"
        case .unsupported(let s): return "cluster file: \(s)"
        case .noSharedMemory(let a, let b):
            return "nodes \(a) and \(b) share no memory and no node shares memory with both, so no ring or relay can join them: add `\(b) = \"path\"` to node \(a)'s reach or `\(a) = \"path\"` to node \(b)'s"
        case .unknownNode(let n): return "node \(n) is not in the cluster file"
        }
    }
}

/// Where each ring lives (SPEC §10.2): ring p→c in c's memory when p maps
/// it (the consumer polls locally), else in p's memory when c maps that
/// (one-way reach: both rings of the pair in the memory they share).
/// Inside a region, the rings it hosts are numbered by (producer, consumer).
/// A pair that shares no memory talks through a relay: the lowest-numbered
/// node that shares memory with both.
public struct RingPlan: Equatable, Sendable {
    public struct Site: Equatable, Sendable {
        public var host: NodeID
        public var index: Int
    }

    public private(set) var sites: [[NodeID]: Site] = [:]
    public private(set) var hosted: [NodeID: [[NodeID]]] = [:]
    /// [p, c] → the node that forwards between them (pairs with no ring).
    public private(set) var relays: [[NodeID]: NodeID] = [:]

    public init(_ config: ClusterConfig) throws(ClusterConfigError) {
        let ids = config.nodes.map(\.id).sorted()
        func shares(_ a: NodeID, _ b: NodeID) -> Bool { config.node(a)!.reach[b] != nil || config.node(b)!.reach[a] != nil }
        for p in ids {
            for c in ids where c != p {
                let pReachesC = config.node(p)!.reach[c] != nil
                let cReachesP = config.node(c)!.reach[p] != nil
                if pReachesC { hosted[c, default: []].append([p, c]) } else if cReachesP { hosted[p, default: []].append([p, c]) } else {
                    guard let r = ids.first(where: { $0 != p && $0 != c && shares(p, $0) && shares($0, c) }) else { throw .noSharedMemory(p, c) }
                    relays[[p, c]] = r
                }
            }
        }
        for (host, pairs) in hosted {
            for (i, pair) in pairs.enumerated() { sites[pair] = Site(host: host, index: i) }
        }
    }

    public func relay(from p: NodeID, to c: NodeID) -> NodeID? { relays[[p, c]] }

    public func site(from p: NodeID, to c: NodeID) -> Site? { sites[[p, c]] }
    public func rings(in host: NodeID) -> Int { hosted[host]?.count ?? 0 }
}
