import PlenumMemory

/// Everything that shapes one simulated run (SPEC.md §7.1). Together with the
/// scenario name and variant it is what a replay token encodes.
public struct SimConfig: Sendable, Equatable {
    /// Store/flush reordering model of every node.
    public enum Ordering: String, Sendable, CaseIterable {
        /// Stores and flushes to different words may reorder unless fenced;
        /// a flush is ordered only after earlier stores to the address it
        /// names (thesis §3.5.3); a releasing store after every earlier store
        /// (not after earlier flushes: only fences order those).
        case weak
        /// Every node's stores and flushes leave in program order (x86-like).
        case tso
    }

    public var nodes = 2
    public var lineSize = 128
    public var ordering = Ordering.weak
    public var seed: UInt64 = 1
    /// Memory operations before the run is wound down.
    public var maxSteps = 20_000
    /// Chances per memory operation, in parts per million.
    public var preemptPPM = 120_000
    public var evictPPM = 15_000
    public var prefetchPPM = 15_000
    public var drainPPM = 150_000
    /// Node crashes (cache and store buffer lost). A scenario that supports
    /// it restarts the node `restartDelay` operations later (SPEC §7.2).
    public var crashPPM = 0
    public var pausePPM = 0
    /// Regions each node reaches, one bit per region (node regions 0…N−1,
    /// then the pool); empty: every node reaches every region. A node always
    /// reaches its own region. One-way reach is a bit set on one side only.
    public var reach: [UInt32] = []
    /// A pool region owned by no node (a CXL pool), after the node regions.
    public var pool = false
    /// Split write-backs at 8-byte granularity (injected corruption).
    public var tornWriteBacks = false
    /// Cluster: garbage written into link-block lines (heartbeat lines and
    /// ring descriptors), chances per node loop in parts per million (SPEC
    /// §7.6 "Link garbage").
    public var linkGarbagePPM = 0
    /// Protocol steps switched off in the production code (SPEC §7.4).
    public var mutants: ProtocolMutants = []

    public init() {}

    /// Whether node n reaches region r (its own always).
    public func reaches(_ n: Int, region r: Int) -> Bool {
        r == n || reach.isEmpty || (n < reach.count && reach[n] & (1 << UInt32(r)) != 0)
    }

    /// Whether this run injects faults that may legitimately corrupt data.
    public var injectsCorruption: Bool { tornWriteBacks }
}

/// SplitMix64: the one source of randomness of a run.
public struct SplitMix64: Sendable {
    public private(set) var state: UInt64
    public init(seed: UInt64) { state = seed }
    @inline(__always) public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    @inline(__always) public mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
    @inline(__always) public mutating func chance(ppm: Int) -> Bool { ppm > 0 && Int(next() % 1_000_000) < ppm }
}
