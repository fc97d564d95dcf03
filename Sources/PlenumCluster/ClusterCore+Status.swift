import PlenumStore

/// What the core tells from outside about its state: status, metrics, the
/// shell's timer, and the simulator's end-state checks (SPEC §7.3).
extension ClusterCore {
    public var directoryEntries: Int { directory.count }
    /// This node's bookkeeping of work in progress, by table, non-empty
    /// ones only: all of it ends with the work (every client done, nothing
    /// in flight, every node in one view it has taken over), so the
    /// simulator's end state requires it empty.
    public var openWork: [String: Int] {
        let tables: [(String, Int)] = [
            ("outstanding requests", outstanding.count), ("gets", gets.count), ("watched ids", watching.count),
            ("digest checks", digestChecks.count), ("deletes", deletes.count), ("lists", lists.count), ("batches", batches.count),
            ("remote references", remoteRefs.values.reduce(0) { $0 + $1.count }),
            ("remote unsealed", remoteUnsealed.values.reduce(0) { $0 + $1.count }),
            ("local unsealed", localUnsealed.values.reduce(0) { $0 + $1.count }),
            ("reservations", myReservations.count), ("re-sent reservations", rehomedReservations.count),
            ("barrier waiters", barrierWaiterCount), ("awaited acknowledgements", awaitingAcks.values.reduce(0, +)),
            ("held replies", held.values.reduce(0) { $0 + $1.count }), ("parked", parkedCount),
            ("awaiting takeover", awaitingTakeoverCount), ("watches as home", directoryWatches),
            ("waiting ids", waitingIds.values.reduce(0, +)),
        ]
        return Dictionary(uniqueKeysWithValues: tables.filter { $0.1 != 0 })
    }
    /// The entries this node is home of, as (reserved by, owner once
    /// sealed): for checks from outside (the simulator's end state).
    public var directorySnapshot: [ObjectID: (reservedBy: NodeID, owner: NodeID?)] {
        directory.entries.mapValues { ($0.reservedBy, $0.owner) }
    }

    /// Watches this node holds as a home (blocking gets elsewhere).
    public var directoryWatches: Int { directory.watcherCount }
    /// References each peer holds on objects in this node's memory.
    public var referencesLent: [NodeID: Int] {
        var out: [NodeID: Int] = [:]
        for n in peers.keys { out[n] = store.references(of: Self.pseudoClient(n)) }
        return out
    }

    /// The earliest time the core must be ticked for a client-visible
    /// deadline (get timeouts), for the shell's timer. Peer request
    /// timeouts are not in it: the cluster shell ticks the core every
    /// heartbeat, which expires them (a loop iteration need not scan them).
    public var nextDeadline: UInt64? {
        var best = store.nextDeadline
        for g in gets.values { if let d = g.deadline, best.map({ d < $0 }) ?? true { best = d } }
        return best
    }

    /// `nextDeadline` for a caller that holds the core in a class property
    /// (the daemon asks after every batch of events): a mutating call works
    /// in place, where a getter made the caller copy the whole core first.
    public mutating func earliestDeadline() -> UInt64? { nextDeadline }
    public var pendingRequests: Int { outstanding.count }
    /// This node's clients waiting at a barrier (SPEC §10.9 `barrier_waiters`).
    public var barrierWaiterCount: Int { barrierWaiters.values.reduce(0) { $0 + $1.count } }
    /// References held here on each peer's objects (for status).
    public var referencesHeld: [NodeID: Int] {
        var out: [NodeID: Int] = [:]
        for refs in remoteRefs.values { for h in refs.values { out[h.node, default: 0] += h.count } }
        return out
    }
}
