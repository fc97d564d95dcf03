/// Requests in flight and the replies that arrived for them, by request id
/// (SPEC §9.6 "Order"): what `submit` and `wait` share. Request ids are
/// handed out in order and few are outstanding at once, so an id's slot is
/// its low bits — no hashing (a `Set` and a `Dictionary` of ids cost a
/// client about 800 instructions a request in SipHash, callgrind):
///
/// ```
///   slot = rid & (capacity − 1)          capacity: a power of two ≤ maxSlots
///   ┌──────────┬──────────┬──────────┬──────────┐
///   │ rid 8    │ 0 (free) │ rid 10   │ rid 11   │   8, 11: in flight
///   │ waiting  │          │ arrived  │ waiting  │   10: its reply, kept
///   └──────────┴──────────┴──────────┴──────────┘
/// ```
/// An id whose slot another holds doubles the table (two ids apart in a
/// table stay apart in its double); past `maxSlots` it goes to `others`,
/// so a request never waited for cannot make the table grow without bound.
/// Request id 0 is never used (SPEC §9.2), so 0 marks a free slot.
struct ReplyTable<Reply> {
    enum State {
        case waiting
        case arrived(Reply)
    }

    static var maxSlots: Int { 4096 }
    private var ids: [UInt64]
    private var states: [State?]
    private var others: [UInt64: State] = [:]
    private(set) var count = 0

    init(capacity: Int = 64) {
        precondition(capacity > 0 && capacity & (capacity - 1) == 0, "capacity: a power of two")
        ids = Array(repeating: 0, count: capacity)
        states = Array(repeating: nil, count: capacity)
    }

    var capacity: Int { ids.count }

    /// `rid` is in flight. Precondition: it is not in the table.
    mutating func expect(_ rid: UInt64) {
        precondition(rid != 0, "request id 0 is reserved")
        while ids[slot(rid)] != 0 && capacity < Self.maxSlots { grow() }
        let i = slot(rid)
        if ids[i] == 0 {
            ids[i] = rid
            states[i] = .waiting
        } else {
            others[rid] = .waiting
        }
        count += 1
    }

    /// A reply for `rid`: kept if `rid` is in flight and has none yet
    /// (true), else dropped (a stray or repeated reply: false).
    mutating func arrive(_ rid: UInt64, _ reply: Reply) -> Bool {
        let i = slot(rid)
        if ids[i] == rid {
            guard case .waiting? = states[i] else { return false }
            states[i] = .arrived(reply)
            return true
        }
        guard !others.isEmpty, case .waiting? = others[rid] else { return false }
        others[rid] = .arrived(reply)
        return true
    }

    /// `rid`'s reply, if it arrived; `rid` leaves the table then.
    mutating func take(_ rid: UInt64) -> Reply? {
        let i = slot(rid)
        if ids[i] == rid {
            guard case .arrived(let r)? = states[i] else { return nil }
            ids[i] = 0
            states[i] = nil
            count -= 1
            return r
        }
        guard !others.isEmpty, case .arrived(let r)? = others[rid] else { return nil }
        others[rid] = nil
        count -= 1
        return r
    }

    /// Whether `rid` is in the table (in flight, or its reply kept).
    func contains(_ rid: UInt64) -> Bool {
        ids[slot(rid)] == rid || (!others.isEmpty && others[rid] != nil)
    }

    private func slot(_ rid: UInt64) -> Int { Int(truncatingIfNeeded: rid) & (ids.count - 1) }

    private mutating func grow() {
        let oldIDs = ids, oldStates = states
        ids = Array(repeating: 0, count: oldIDs.count * 2)
        states = Array(repeating: nil, count: oldIDs.count * 2)
        for (rid, s) in zip(oldIDs, oldStates) where rid != 0 {
            let i = slot(rid)
            assert(ids[i] == 0, "ids apart in a table are apart in its double")
            ids[i] = rid
            states[i] = s
        }
    }
}
