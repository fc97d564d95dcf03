import PlenumStore

/// The checker's ground truth for the `cluster` scenario (SPEC.md §7.3):
/// every object the stores hold, where, in which state, with which bytes,
/// and every reference a client holds. The stores are never asked; their
/// replies and actions are judged against this.
///
/// ```
///  create reply ─▶ live[id] (created) ─▶ seal sent (sealing) ─▶ sealed
///        │ unique id among live objects, across membership changes (only a
///        │ dead life's objects and dead creators' unsealed ones are gone); range overlaps
///        │ no live object and no held reference of the same owner
///  get reply ──▶ held (node, owner, range, stamp) ─▶ read bytes == pattern(stamp)
///  owner frees (delete, evict) ─▶ no held reference to it may remain
/// ```
final class ClusterLedger {
    struct Object {
        var id: ObjectID
        var owner: Int
        var offset: Int
        var reserved: Int
        var size: Int
        var stamp: UInt64
        var creator: Int
        /// The lives (SPEC §7.6: node · 8 + incarnation index) of owner and creator.
        var ownerLife: Int
        var creatorLife: Int
        var sealing = false
        /// The creator got the seal's reply.
        var confirmed = false
    }
    struct Held { var holder: Int; var owner: Int; var offset: Int; var reserved: Int; var id: ObjectID }

    var live: [Object] = []
    /// Objects whose creator died between its seal request and the reply:
    /// the owner may have sealed them or dropped them. A get may still return
    /// one (it becomes live again); an allocation over one shows it was dropped.
    var uncertain: [Object] = []
    var held: [Held] = []
    var nextStamp: UInt64 = 1
    /// Lives that crashed: an object in a dead life's memory, or an
    /// unsealed one a dead life was creating, is gone (or will be aborted)
    /// whatever the survivors know yet, so its id may be created again.
    var dead: Set<Int> = []
    /// Each node's life now (its incarnation index), and the life whose
    /// memory holds an offset of a node's region (each life has its own
    /// object area: a new region file, SPEC §10.8).
    var life: [Int]
    let lifeAt: (_ node: Int, _ offset: Int) -> Int
    static let livesPerNode = 8
    func lifeID(_ node: Int) -> Int { node * Self.livesPerNode + life[node] }
    var checkedReads = 0
    unowned(unsafe) let sim: Simulation

    init(sim: Simulation, nodes: Int, lifeAt: @escaping (Int, Int) -> Int) {
        self.sim = sim
        life = [Int](repeating: 0, count: nodes)
        self.lifeAt = lifeAt
    }

    private func fail(_ kind: Violation.Kind, _ node: Int, _ why: String) {
        sim.fail(kind, node: node, line: -1, why)
    }

    /// The bytes of an object of `size` bytes stamped `stamp`.
    static func pattern(stamp: UInt64, size: Int) -> [UInt8] {
        var z = stamp &* 0x9E37_79B9_7F4A_7C15
        return (0..<size).map { i in
            if i < 8 { return UInt8(truncatingIfNeeded: stamp >> (8 * UInt64(i))) }
            z = z &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: z >> 33)
        }
    }

    /// A create was granted to `creator`'s client: id unique, range free.
    func created(_ id: ObjectID, owner: Int, offset: Int, reserved: Int, size: Int, creator: Int) -> UInt64 {
        let ownerLife = owner * Self.livesPerNode + lifeAt(owner, offset), creatorLife = lifeID(creator)
        if let other = live.first(where: { $0.id == id && !dead.contains($0.ownerLife) && !(dead.contains($0.creatorLife) && !$0.sealing) }) {
            fail(.duplicateId, creator, "object \(id) created on node \(owner) for node \(creator) while the one created on node \(other.owner) for node \(other.creator) is live")
        }
        uncertain.removeAll { $0.owner == owner && $0.offset < offset + reserved && offset < $0.offset + $0.reserved }
        // A dead creator's unconfirmed object is aborted by its owner when
        // the owner learns of the death, which may be long before every
        // node has (observers learn at different times): an allocation over
        // one shows it was dropped, as for an uncertain one.
        live.removeAll { dead.contains($0.creatorLife) && !$0.confirmed && $0.owner == owner && $0.offset < offset + reserved && offset < $0.offset + $0.reserved }
        for o in live where o.owner == owner && o.offset < offset + reserved && offset < o.offset + o.reserved {
            fail(.mismatch, creator, "node \(owner) allocated [\(offset), +\(reserved)) for \(id) over live object \(o.id) at [\(o.offset), +\(o.reserved))")
        }
        for h in held where h.owner == owner && h.offset < offset + reserved && offset < h.offset + h.reserved {
            fail(.freedWhileReferenced, creator, "node \(owner) reused [\(offset), +\(reserved)) for \(id) while node \(h.holder) still holds a reference to \(h.id) there")
        }
        let stamp = nextStamp
        nextStamp += 1
        live.append(Object(id: id, owner: owner, offset: offset, reserved: reserved, size: size, stamp: stamp, creator: creator,
                           ownerLife: ownerLife, creatorLife: creatorLife))
        return stamp
    }

    func sealing(_ stamp: UInt64) {
        if let i = live.firstIndex(where: { $0.stamp == stamp }) { live[i].sealing = true }
    }

    func confirmed(_ stamp: UInt64) {
        if let i = live.firstIndex(where: { $0.stamp == stamp }) { live[i].confirmed = true }
    }

    func revive(_ stamp: UInt64) {
        if let i = uncertain.firstIndex(where: { $0.stamp == stamp }) { live.append(uncertain.remove(at: i)) }
    }

    func uncertain(stamp: UInt64) {
        if let i = live.firstIndex(where: { $0.stamp == stamp }) { uncertain.append(live.remove(at: i)) }
    }

    func forget(stamp: UInt64) {
        live.removeAll { $0.stamp == stamp }
        uncertain.removeAll { $0.stamp == stamp }
    }

    /// The owner's store (its life now) freed `id` (delete or eviction).
    func freed(_ id: ObjectID, owner: Int) {
        let l = lifeID(owner)
        uncertain.removeAll { $0.id == id && $0.ownerLife == l }
        guard let i = live.firstIndex(where: { $0.id == id && $0.ownerLife == l }) else { return }
        let o = live.remove(at: i)
        for h in held where h.owner == owner && h.offset == o.offset {
            fail(.freedWhileReferenced, owner, "node \(owner) freed \(id) while node \(h.holder) still holds a reference to it")
        }
    }

    /// A get on `node` returned this location: which object it must be.
    func acquired(_ id: ObjectID, owner: Int, offset: Int, node: Int) -> Object? {
        if let u = uncertain.firstIndex(where: { $0.id == id && $0.owner == owner && $0.offset == offset }) {
            live.append(uncertain.remove(at: u))
        }
        guard let o = live.first(where: { $0.id == id && $0.owner == owner && $0.offset == offset && $0.sealing }) else {
            fail(.mismatch, node, "get of \(id) on node \(node) returned [\(offset)] of node \(owner), where no sealed object \(id) lives")
            return nil
        }
        held.append(Held(holder: node, owner: owner, offset: offset, reserved: o.reserved, id: id))
        return o
    }

    func released(_ id: ObjectID, node: Int) {
        if let i = held.firstIndex(where: { $0.holder == node && $0.id == id }) { held.remove(at: i) }
    }

    /// A client reads bytes of `o`: it must hold a reference to it then
    /// (a read after release may see the range reused at any moment).
    func reading(_ o: Object, node: Int) {
        if !held.contains(where: { $0.holder == node && $0.owner == o.owner && $0.offset == o.offset }) {
            fail(.useAfterRelease, node, "node \(node) reads \(o.id) in node \(o.owner)'s memory at \(o.offset) without holding a reference to it")
        }
    }

    /// A client's read of an object it acquired.
    func read(_ bytes: [UInt8], of o: Object, node: Int) {
        checkedReads += 1
        if bytes != Self.pattern(stamp: o.stamp, size: o.size) {
            let firstBad = zip(bytes, Self.pattern(stamp: o.stamp, size: o.size)).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? 0
            fail(.staleObject, node, "node \(node) read \(o.id) (\(o.size) B in node \(o.owner)'s memory at \(o.offset)) and byte \(firstBad) differs from what its creator wrote")
        }
    }

    /// Node `n`'s client died: its references are gone with it.
    func clientDied(node n: Int) {
        held.removeAll { $0.holder == n }
    }

    /// Node `n` crashed (its life now): its objects are gone, and its
    /// client's references are gone with it.
    func crashed(_ n: Int) {
        dead.insert(lifeID(n))
        held.removeAll { $0.holder == n }
    }

    /// Node `n` restarted: a new life, with an object area of its own.
    func restarted(_ n: Int, life l: Int) { life[n] = l }

    /// Every live node has fenced life `dead`: its objects and its unsealed
    /// creations are gone (its memory is never read again).
    func fenced(life d: Int) {
        uncertain += live.filter { $0.ownerLife != d && $0.creatorLife == d && $0.sealing && !$0.confirmed }
        live.removeAll { $0.ownerLife == d || ($0.creatorLife == d && !$0.confirmed) }
        uncertain.removeAll { $0.ownerLife == d }
    }
}
