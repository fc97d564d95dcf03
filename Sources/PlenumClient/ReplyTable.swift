/// Requests in flight and the replies that arrived for them, by request id
/// (SPEC §9.6 "Order"): what `submit` and `wait` share. Request ids are
/// handed out in order and few are outstanding at once, so an id's slot is
/// its low bits — no hashing (a `Set` and a `Dictionary` of ids cost a
/// client about 800 instructions a request in SipHash, callgrind):
///
/// ```
///   slot = rid & (capacity − 1)          capacity: a power of two ≤ maxSlots
///   ┌──────────┬──────────┬──────────┬──────────┐
///   │ rid 8    │ 0 (free) │ rid 10   │ rid 11   │   ids     8, 11: in flight
///   │ waiting  │ free     │ arrived  │ waiting  │   state   10: its reply, kept
///   │ —        │ —        │ reply 10 │ —        │   held    initialized iff arrived
///   └──────────┴──────────┴──────────┴──────────┘
/// ```
/// An id whose slot another holds doubles the table (two ids apart in a
/// table stay apart in its double); past `maxSlots` it goes to `others`,
/// so a request never waited for cannot make the table grow without bound.
/// Request id 0 is never used (SPEC §9.2), so 0 marks a free slot.
/// Replies are moved into and out of a buffer of their own (`held`),
/// slot i initialized exactly while `state[i] == arrived`: kept in an
/// array of optionals, every store and take went through the runtime's
/// generic enum witnesses (about 500 instructions a request, callgrind).
/// A class, so that buffer has one owner and a `deinit`.
final class ReplyTable<Reply> {
    private enum State: UInt8 { case free, waiting, arrived }

    static var maxSlots: Int { 4096 }
    private var ids: [UInt64]
    private var state: [State]
    private var held: UnsafeMutablePointer<Reply>
    /// Ids past `maxSlots` whose slot another holds: nil while waiting.
    private var others: [UInt64: Reply?] = [:]
    private(set) var count = 0

    init(capacity: Int = 64) {
        precondition(capacity > 0 && capacity & (capacity - 1) == 0, "capacity: a power of two")
        ids = Array(repeating: 0, count: capacity)
        state = Array(repeating: .free, count: capacity)
        held = .allocate(capacity: capacity)
    }

    deinit {
        for i in state.indices where state[i] == .arrived { (held + i).deinitialize(count: 1) }
        held.deallocate()
    }

    var capacity: Int { ids.count }

    /// `rid` is in flight. Precondition: it is not in the table.
    func expect(_ rid: UInt64) {
        precondition(rid != 0, "request id 0 is reserved")
        while ids[slot(rid)] != 0 && capacity < Self.maxSlots { grow() }
        let i = slot(rid)
        if ids[i] == 0 {
            ids[i] = rid
            state[i] = .waiting
        } else {
            others[rid] = .some(nil)
        }
        count += 1
    }

    /// A reply for `rid`: kept if `rid` is in flight and has none yet
    /// (true), else dropped (a stray or repeated reply: false).
    func arrive(_ rid: UInt64, _ reply: Reply) -> Bool {
        let i = slot(rid)
        if ids[i] == rid {
            guard state[i] == .waiting else { return false }
            (held + i).initialize(to: reply)
            state[i] = .arrived
            return true
        }
        guard !others.isEmpty, case .some(.none) = others[rid] else { return false }
        others[rid] = .some(reply)
        return true
    }

    /// `rid`'s reply, if it arrived; `rid` leaves the table then.
    func take(_ rid: UInt64) -> Reply? {
        let i = slot(rid)
        if ids[i] == rid {
            guard state[i] == .arrived else { return nil }
            ids[i] = 0
            state[i] = .free
            count -= 1
            return (held + i).move()
        }
        guard !others.isEmpty, case .some(.some(let r)) = others[rid] else { return nil }
        others[rid] = nil
        count -= 1
        return r
    }

    /// Whether `rid` is in the table (in flight, or its reply kept).
    func contains(_ rid: UInt64) -> Bool {
        ids[slot(rid)] == rid || (!others.isEmpty && others[rid] != nil)
    }

    private func slot(_ rid: UInt64) -> Int { Int(truncatingIfNeeded: rid) & (ids.count - 1) }

    private func grow() {
        let oldIDs = ids, oldState = state, oldHeld = held
        let n = oldIDs.count * 2
        ids = Array(repeating: 0, count: n)
        state = Array(repeating: .free, count: n)
        held = .allocate(capacity: n)
        for (k, rid) in oldIDs.enumerated() where rid != 0 {
            let i = slot(rid)
            assert(ids[i] == 0, "ids apart in a table are apart in its double")
            ids[i] = rid
            state[i] = oldState[k]
            if oldState[k] == .arrived { (held + i).moveInitialize(from: oldHeld + k, count: 1) }
        }
        oldHeld.deallocate()
    }
}
