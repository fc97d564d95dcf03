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
    private var next: [ObjectID: ObjectID] = [:]
    private var prev: [ObjectID: ObjectID] = [:]
    private var reserved: [ObjectID: Int] = [:]
    private(set) var head: ObjectID?
    private(set) var tail: ObjectID?
    /// Σ reserved bytes of the members.
    private(set) var bytes = 0

    var count: Int { reserved.count }
    func contains(_ id: ObjectID) -> Bool { reserved[id] != nil }
    func after(_ id: ObjectID) -> ObjectID? { next[id] }

    /// Appends `id` as the most recently used (no-op if present).
    mutating func append(_ id: ObjectID, reserved r: Int) {
        guard reserved[id] == nil else { return }
        reserved[id] = r
        bytes += r
        if let t = tail { next[t] = id; prev[id] = t } else { head = id }
        tail = id
    }

    mutating func remove(_ id: ObjectID) {
        guard let r = reserved.removeValue(forKey: id) else { return }
        bytes -= r
        let p = prev.removeValue(forKey: id), n = next.removeValue(forKey: id)
        if let p { next[p] = n } else { head = n }
        if let n { prev[n] = p } else { tail = p }
    }

    /// Marks `id` as just used, if it is a member.
    mutating func touch(_ id: ObjectID) {
        guard let r = reserved[id], tail != id else { return }
        remove(id)
        append(id, reserved: r)
    }
}
