import CNuma
import PlenumMemory

/// NUMA placement of a region through libnuma (`--numa-node`).
public enum Numa {
    /// Whether libnuma reports NUMA support, and the highest node id.
    public static var topology: (available: Bool, maxNode: Int) {
        guard numa_available() >= 0 else { return (false, 0) }
        return (true, Int(numa_max_node()))
    }

    /// A one-line description for `plenum region info` and logs.
    public static var summary: String {
        let t = topology
        if !t.available { return "libnuma: NUMA not available on this machine" }
        if t.maxNode == 0 { return "libnuma: 1 NUMA node (binding is a no-op here)" }
        return "libnuma: \(t.maxNode + 1) NUMA nodes (0...\(t.maxNode))"
    }

    /// Throws unless libnuma is available and `node` exists.
    public static func validate(_ node: Int) throws(RegionError) {
        let t = topology
        guard t.available else { throw .numaUnavailable }
        guard node >= 0, node <= t.maxNode else { throw .numaNodeOutOfRange(requested: node, maxNode: t.maxNode) }
    }

    /// Binds the mapping's pages to `node` (MPOL_BIND via numa_tonode_memory).
    /// Pages already resident elsewhere stay where they are; a region bound at
    /// creation is placed as it is first touched.
    public static func bind(_ mapping: Mapping, to node: Int) throws(RegionError) {
        try validate(node)
        mapping.withUnsafeRange { base, size in numa_tonode_memory(base, size, Int32(node)) }
    }
}
