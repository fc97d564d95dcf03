/// Sealed, unreferenced objects in least-recently-used order (SPEC §9.1):
/// the eviction candidates. A doubly linked list of nodes in one array,
/// linked by index, with one dictionary from id to node: append, remove and
/// move-to-back cost one lookup of the id (the neighbours are found by
/// index), and the oldest is the head. It also keeps the sum of the
/// members' reserved bytes.
///
/// ```
///   head (least recent) ─▶ a ⇄ b ⇄ c ◀─ tail (most recent)
///   nodes: [ a | b | free | c | … ]   slot ← node[id];  free slots chained through `next`
///   invariant: id ∈ list ⟺ the object is sealed and nothing references it
/// ```
struct LRUList: Sendable {
    private struct Node: Sendable { var id: ObjectID; var prev: Int32; var next: Int32; var reserved: Int }
    private static let none: Int32 = -1
    private var nodes: [Node] = []
    private var node: [ObjectID: Int32] = [:]
    private var headSlot = LRUList.none
    private var tailSlot = LRUList.none
    /// First free slot of `nodes`; free slots are chained through `next`.
    private var freeSlot = LRUList.none
    /// Σ reserved bytes of the members.
    private(set) var bytes = 0

    var count: Int { node.count }
    var head: ObjectID? { headSlot == Self.none ? nil : nodes[Int(headSlot)].id }
    var tail: ObjectID? { tailSlot == Self.none ? nil : nodes[Int(tailSlot)].id }
    func contains(_ id: ObjectID) -> Bool { node[id] != nil }
    func after(_ id: ObjectID) -> ObjectID? {
        guard let s = node[id] else { return nil }
        let n = nodes[Int(s)].next
        return n == Self.none ? nil : nodes[Int(n)].id
    }

    /// Appends `id` as the most recently used (no-op if present).
    mutating func append(_ id: ObjectID, reserved r: Int) {
        let s: Int32
        if freeSlot != Self.none { s = freeSlot } else {
            precondition(nodes.count < Int(Int32.max), "LRU list full")
            s = Int32(nodes.count)
        }
        // One lookup: insert, and put back what was there if id was a member.
        if let old = node.updateValue(s, forKey: id) { node[id] = old; return }
        let n = Node(id: id, prev: tailSlot, next: Self.none, reserved: r)
        if s == freeSlot { freeSlot = nodes[Int(s)].next; nodes[Int(s)] = n } else { nodes.append(n) }
        if tailSlot != Self.none { nodes[Int(tailSlot)].next = s } else { headSlot = s }
        tailSlot = s
        bytes += r
    }

    mutating func remove(_ id: ObjectID) {
        guard let s = node.removeValue(forKey: id) else { return }
        let l = nodes[Int(s)]
        assert(l.id == id)
        bytes -= l.reserved
        if l.prev != Self.none { nodes[Int(l.prev)].next = l.next } else { headSlot = l.next }
        if l.next != Self.none { nodes[Int(l.next)].prev = l.prev } else { tailSlot = l.prev }
        nodes[Int(s)].next = freeSlot
        freeSlot = s
        // Emptied: start over from slot 0, keeping the array's capacity.
        if node.isEmpty { nodes.removeAll(keepingCapacity: true); freeSlot = Self.none }
    }

    /// Marks `id` as just used, if it is a member: its node is unlinked and
    /// linked again at the tail, in place (one lookup).
    mutating func touch(_ id: ObjectID) {
        guard let s = node[id], s != tailSlot else { return }
        let l = nodes[Int(s)]
        // Not the tail, so it has a next.
        if l.prev != Self.none { nodes[Int(l.prev)].next = l.next } else { headSlot = l.next }
        nodes[Int(l.next)].prev = l.prev
        nodes[Int(s)].prev = tailSlot
        nodes[Int(s)].next = Self.none
        nodes[Int(tailSlot)].next = s
        tailSlot = s
    }
}
