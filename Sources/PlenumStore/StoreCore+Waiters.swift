/// Blocking gets: woken by the seals of their ids, or by their deadline
/// (SPEC §9.4). Costs: a seal O(waiters of that id); a tick O(expired).
extension StoreCore {
    mutating func wakeWaiters(sealed id: ObjectID, into out: inout [StoreAction]) {
        for w in waits.sealed(id, visited: &waiterVisits) {
            // Everything it named was sealed at some point; an id deleted
            // since is waited for again (a get returns sealed objects).
            let gone = Set(w.ids.filter { objects[$0]?.state != .sealed })
            if gone.isEmpty {
                out.append(.reply(w.client, requestId: w.requestId, .objects(take(w.ids, client: w.client))))
            } else {
                waits.rewait(w, missing: gone)
            }
        }
    }

    mutating func expireWaiters(now: UInt64, into out: inout [StoreAction]) {
        guard let first = waits.earliestDeadline, first <= now else { return }
        for w in waits.expired(now: now) {
            out.append(.reply(w.client, requestId: w.requestId, .objects(take(w.ids, client: w.client))))
        }
    }
}
