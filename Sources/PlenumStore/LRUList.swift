/// Sealed, unreferenced objects in least-recently-used order (SPEC §9.1):
/// the eviction candidates. A doubly linked list threaded through two
/// dictionaries, so append, remove and move-to-back are O(1) and the oldest
/// is the head. It also keeps the sum of the members' reserved bytes.
///
/// ```
///   head (least recent) ─▶ a ⇄ b ⇄ c ◀─ tail (most recent)
///   invariant: id ∈ list ⟺ the object is sealed and nothing references it
/// ```
struct LRUList: Sendable {
    /// One entry per member: its neighbours and reserved bytes, so an
    /// append or a remove costs one lookup of the id and one of each
    /// neighbour.
    private struct Link: Sendable { var prev: ObjectID?; var next: ObjectID?; var reserved: Int }
    private var links: [ObjectID: Link] = [:]
    private(set) var head: ObjectID?
    private(set) var tail: ObjectID?
    /// Σ reserved bytes of the members.
    private(set) var bytes = 0

    var count: Int { links.count }
    func contains(_ id: ObjectID) -> Bool { links[id] != nil }
    func after(_ id: ObjectID) -> ObjectID? { links[id]?.next }

    /// Appends `id` as the most recently used (no-op if present).
    mutating func append(_ id: ObjectID, reserved r: Int) {
        guard links[id] == nil else { return }
        links[id] = Link(prev: tail, next: nil, reserved: r)
        bytes += r
        if let t = tail { links[t]?.next = id } else { head = id }
        tail = id
    }

    mutating func remove(_ id: ObjectID) {
        guard let l = links.removeValue(forKey: id) else { return }
        bytes -= l.reserved
        if let p = l.prev { links[p]?.next = l.next } else { head = l.next }
        if let n = l.next { links[n]?.prev = l.prev } else { tail = l.prev }
    }

    /// Marks `id` as just used, if it is a member.
    mutating func touch(_ id: ObjectID) {
        guard let l = links[id], tail != id else { return }
        remove(id)
        append(id, reserved: l.reserved)
    }
}
