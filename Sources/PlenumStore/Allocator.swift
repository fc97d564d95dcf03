/// The owner-only allocator of a store's object area (thesis §3.8.1).
///
/// Best fit with immediate coalescing. All metadata lives here, in private
/// memory; nothing is written into the shared region. Every block starts on
/// a line boundary and its length is a multiple of the line size (≥ 64), so
/// objects are 64-byte aligned and no two objects share a line.
///
/// ```
///   base                                                          base+size
///   |== obj ==|---- free ----|== obj ==|== obj ==|------- free -------|
///   free blocks: by start (neighbour lookup on free, O(1)) and in a treap
///   ordered by (length, start) for best fit, O(log n)
///   invariants: free blocks never touch (always coalesced); used + free = size
/// ```
public struct RegionAllocator: Sendable {
    public let base: Int
    public let size: Int
    public let granule: Int
    var freeByStart: [Int: Int] = [:]
    var freeByEnd: [Int: Int] = [:]
    var bySize = Treap()
    var allocated: [Int: Int] = [:]
    public private(set) var used = 0

    /// - Precondition: `base` and `size` are multiples of `lineSize` (≥ 64).
    public init(base: Int, size: Int, lineSize: Int) {
        precondition(lineSize >= 64 && lineSize & (lineSize - 1) == 0)
        precondition(base % lineSize == 0 && size % lineSize == 0 && size >= 0)
        self.base = base
        self.size = size
        self.granule = lineSize
        if size > 0 { insertFree(start: base, length: size) }
    }

    /// Bytes a request of `bytes` occupies (at least one line).
    public func footprint(_ bytes: Int) -> Int { max(granule, (bytes + granule - 1) / granule * granule) }

    /// Allocates `bytes` (rounded up to whole lines); nil when no free block fits.
    public mutating func allocate(_ bytes: Int) -> Int? {
        guard bytes >= 0, bytes <= size else { return nil }
        let need = footprint(bytes)
        guard let (length, start) = bySize.lowerBound(length: need) else { return nil }
        removeFree(start: start, length: length)
        if length > need { insertFree(start: start + need, length: length - need) }
        allocated[start] = need
        used += need
        return start
    }

    /// Frees the block at `offset` and coalesces it with free neighbours.
    public mutating func free(_ offset: Int) throws(AllocatorError) {
        guard let length = allocated.removeValue(forKey: offset) else { throw .notAllocated(offset) }
        used -= length
        var start = offset, total = length
        if let before = freeByEnd[offset] {
            let l = freeByStart[before]!
            removeFree(start: before, length: l)
            start = before
            total += l
        }
        if let l = freeByStart[offset + length] {
            removeFree(start: offset + length, length: l)
            total += l
        }
        insertFree(start: start, length: total)
    }

    /// The length of the block allocated at `offset`.
    public func length(at offset: Int) -> Int? { allocated[offset] }

    /// The longest free block (0 when full).
    public var largestFree: Int { bySize.maximum?.length ?? 0 }

    public var stats: AllocatorStats {
        let free = size - used
        let largest = largestFree
        return AllocatorStats(capacity: size, used: used, free: free, allocations: allocated.count,
                              freeBlocks: freeByStart.count, largestFree: largest,
                              fragmentation: free == 0 ? 0 : 1 - Double(largest) / Double(free))
    }

    /// Free blocks as (start, length), by start — for tests and `stat`.
    public var freeBlocks: [(start: Int, length: Int)] { freeByStart.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }

    private mutating func insertFree(start: Int, length: Int) {
        freeByStart[start] = length
        freeByEnd[start + length] = start
        bySize.insert(length: length, start: start)
    }

    private mutating func removeFree(start: Int, length: Int) {
        freeByStart[start] = nil
        freeByEnd[start + length] = nil
        bySize.remove(length: length, start: start)
    }
}

public struct AllocatorStats: Sendable, Equatable, Codable {
    public var capacity: Int
    public var used: Int
    public var free: Int
    public var allocations: Int
    public var freeBlocks: Int
    public var largestFree: Int
    /// 1 − largest free block / free bytes: 0 when all free space is one block.
    public var fragmentation: Double

    public init(capacity: Int, used: Int, free: Int, allocations: Int, freeBlocks: Int, largestFree: Int, fragmentation: Double) {
        self.capacity = capacity
        self.used = used
        self.free = free
        self.allocations = allocations
        self.freeBlocks = freeBlocks
        self.largestFree = largestFree
        self.fragmentation = fragmentation
    }
}

public enum AllocatorError: Error, Equatable, CustomStringConvertible {
    case notAllocated(Int)
    public var description: String {
        switch self {
        case .notAllocated(let o): return "offset \(o) is not an allocated block (double free or a foreign offset)"
        }
    }
}

/// A treap of free blocks ordered by (length, start): best fit in O(log n).
struct Treap: Sendable {
    struct Node: Sendable {
        var length: Int, start: Int, priority: UInt64
        var left = -1, right = -1
    }
    var nodes: [Node] = []
    var spare: [Int] = []
    var root = -1
    var seed: UInt64 = 0x2545_F491_4F6C_DD1D

    private mutating func random() -> UInt64 {
        seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17
        return seed
    }

    private static func less(_ a: (Int, Int), _ b: (Int, Int)) -> Bool { a.0 != b.0 ? a.0 < b.0 : a.1 < b.1 }

    /// Splits `t` into keys < key and keys ≥ key.
    private mutating func split(_ t: Int, _ key: (Int, Int)) -> (Int, Int) {
        if t < 0 { return (-1, -1) }
        if Treap.less((nodes[t].length, nodes[t].start), key) {
            let (l, r) = split(nodes[t].right, key)
            nodes[t].right = l
            return (t, r)
        } else {
            let (l, r) = split(nodes[t].left, key)
            nodes[t].left = r
            return (l, t)
        }
    }

    private mutating func merge(_ a: Int, _ b: Int) -> Int {
        if a < 0 { return b }
        if b < 0 { return a }
        if nodes[a].priority > nodes[b].priority {
            nodes[a].right = merge(nodes[a].right, b)
            return a
        } else {
            nodes[b].left = merge(a, nodes[b].left)
            return b
        }
    }

    mutating func insert(length: Int, start: Int) {
        let n = Node(length: length, start: start, priority: random())
        let index: Int
        if let s = spare.popLast() { nodes[s] = n; index = s } else { nodes.append(n); index = nodes.count - 1 }
        let (l, r) = split(root, (length, start))
        root = merge(merge(l, index), r)
    }

    mutating func remove(length: Int, start: Int) {
        let (l, r) = split(root, (length, start))
        let (mid, rest) = split(r, (length, start + 1))
        if mid >= 0 { spare.append(mid) }
        root = merge(l, rest)
    }

    /// The smallest (length, start) with length ≥ `length`.
    func lowerBound(length: Int) -> (Int, Int)? {
        var t = root
        var best: (Int, Int)?
        while t >= 0 {
            if nodes[t].length >= length { best = (nodes[t].length, nodes[t].start); t = nodes[t].left } else { t = nodes[t].right }
        }
        return best
    }

    var maximum: (length: Int, start: Int)? {
        var t = root
        guard t >= 0 else { return nil }
        while nodes[t].right >= 0 { t = nodes[t].right }
        return (nodes[t].length, nodes[t].start)
    }
}
