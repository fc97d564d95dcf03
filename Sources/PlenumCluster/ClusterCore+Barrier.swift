import PlenumStore

/// The cluster barrier (SPEC §10.6): a node arrives at barrier `name` when
/// one of its clients calls it; the coordinator (the name's home) releases
/// it when every live node arrived, and counts the next use afresh. The
/// round in the messages is the arriving node's own count, for diagnosis
/// only: a restarted node starts at 1 and still meets the others. A node
/// that dies stops counting; arrivals are re-sent when the coordinator moves.
extension ClusterCore {
    mutating func barrier(_ c: ClientID, _ rid: UInt64, name: UInt64, now: UInt64, into out: inout [ClusterAction]) {
        barrierWaiters[name, default: []].append((c, rid))
        guard barrierArrived[name] == nil else { return }
        let round = (barrierPassed[name] ?? 0) + 1
        barrierArrived[name] = round
        arrive(name: name, round: round, now: now, into: &out)
    }

    mutating func arrive(name: UInt64, round: UInt64, now: UInt64, into out: inout [ClusterAction]) {
        let coordinator = Home.of(name: name, among: live)
        if coordinator == me {
            barrierArrivals[name, default: [:]][0, default: []].insert(me)
            checkBarrier(name, now: now, into: &out)
        } else {
            send(.barrierArrive(name: name, round: round), to: coordinator, now: now, into: &out)
        }
    }

    /// Coordinator: release every round that all live nodes reached.
    mutating func checkBarrier(_ name: UInt64, now: UInt64, into out: inout [ClusterAction]) {
        guard Home.of(name: name, among: live) == me, let rounds = barrierArrivals[name] else { return }
        let everyone = Set(live)
        for (round, nodes) in rounds where everyone.isSubset(of: nodes) {
            barrierArrivals[name]![round] = nil
            for n in peers.keys { send(.barrierRelease(name: name, round: round, nodes: UInt32(everyone.count)), to: n, now: now, into: &out) }
            released(name: name, round: round, nodes: everyone.count, into: &out)
        }
        if barrierArrivals[name]?.isEmpty == true { barrierArrivals[name] = nil }
    }

    mutating func released(name: UInt64, round: UInt64, nodes: Int, into out: inout [ClusterAction]) {
        guard let arrived = barrierArrived[name] else { return }
        _ = round
        barrierArrived[name] = nil
        barrierPassed[name] = arrived
        for w in barrierWaiters.removeValue(forKey: name) ?? [] { reply(w.client, w.requestId, .barrierPassed(nodes: nodes), into: &out) }
    }
}
