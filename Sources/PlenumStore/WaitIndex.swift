/// Blocking gets, indexed by the ids they wait for and by deadline
/// (SPEC §9.4), so a seal costs O(waiters of that id) and a timer tick
/// O(log n) per expired get — never a scan of every waiter.
///
/// ```
///   waiters: token ─▶ (client, request, ids, deadline, missing)
///   byId:    id    ─▶ {tokens still waiting for id to be sealed}
///   byClient:client─▶ {tokens}            (disconnect)
///   deadlines: min-heap of (deadline, token), stale entries skipped
///   invariant: token ∈ byId[id] ⟺ waiter token waits for id;
///              missing = |{id : token ∈ byId[id]}|
/// ```
struct WaitIndex: Sendable {
    struct Waiter: Sendable {
        var client: ClientID
        var requestId: UInt64
        var ids: [ObjectID]
        var deadline: UInt64?
        var missing: Int
    }

    private(set) var waiters: [UInt64: Waiter] = [:]
    private var byId: [ObjectID: Set<UInt64>] = [:]
    private var byClient: [ClientID: Set<UInt64>] = [:]
    /// Ids each client's waiting gets name (the per-client bound).
    private(set) var waitingIds: [ClientID: Int] = [:]
    private var heap: [(deadline: UInt64, token: UInt64)] = []
    private var nextToken: UInt64 = 1

    var earliestDeadline: UInt64? { heap.first?.deadline }

    /// Registers a get waiting for `missing` (distinct, unsealed) ids.
    mutating func add(client: ClientID, requestId: UInt64, ids: [ObjectID], missing: Set<ObjectID>, deadline: UInt64?) {
        let token = nextToken
        nextToken += 1
        waiters[token] = Waiter(client: client, requestId: requestId, ids: ids, deadline: deadline, missing: missing.count)
        for id in missing { byId[id, default: []].insert(token) }
        byClient[client, default: []].insert(token)
        waitingIds[client, default: 0] += ids.count
        if let deadline { push(deadline, token) }
    }

    /// `id` was sealed: the waiters that now wait for nothing, in the order
    /// they were registered (removed from the index). Visits only the
    /// waiters of `id`; `visited` counts them.
    mutating func sealed(_ id: ObjectID, visited: inout Int) -> [Waiter] {
        guard let tokens = byId.removeValue(forKey: id) else { return [] }
        visited += tokens.count
        var done: [UInt64] = []
        for t in tokens {
            waiters[t]!.missing -= 1
            if waiters[t]!.missing == 0 { done.append(t) }
        }
        return done.sorted().map { remove($0) }
    }

    /// Waits again for ids that are no longer sealed (deleted meanwhile).
    mutating func rewait(_ w: Waiter, missing: Set<ObjectID>) {
        add(client: w.client, requestId: w.requestId, ids: w.ids, missing: missing, deadline: w.deadline)
    }

    /// Waiters whose deadline is ≤ now (removed from the index).
    mutating func expired(now: UInt64) -> [Waiter] {
        var out: [Waiter] = []
        while let top = heap.first, top.deadline <= now {
            pop()
            if let w = waiters[top.token], w.deadline == top.deadline { out.append(remove(top.token)) }
        }
        return out
    }

    /// Forgets every waiter of `client`.
    mutating func drop(client: ClientID) {
        for t in byClient[client] ?? [] { _ = remove(t) }
    }

    private mutating func remove(_ token: UInt64) -> Waiter {
        let w = waiters.removeValue(forKey: token)!
        for id in Set(w.ids) {
            guard var s = byId[id], s.remove(token) != nil else { continue }
            byId[id] = s.isEmpty ? nil : s
        }
        byClient[w.client]?.remove(token)
        if byClient[w.client]?.isEmpty == true { byClient[w.client] = nil }
        let left = waitingIds[w.client, default: 0] - w.ids.count
        waitingIds[w.client] = left > 0 ? left : nil
        while let top = heap.first, waiters[top.token]?.deadline != top.deadline { pop() }
        // Stale entries below the top would otherwise stay until their own
        // deadline: rebuild when they outnumber the live ones.
        if heap.count > 2 * waiters.count + 64 {
            heap = waiters.compactMap { t, w in w.deadline.map { ($0, t) } }
            heap.sort { ($0.deadline, $0.token) < ($1.deadline, $1.token) }   // a sorted array is a heap
        }
        return w
    }

    private mutating func push(_ deadline: UInt64, _ token: UInt64) {
        heap.append((deadline, token))
        var i = heap.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard heap[i].deadline < heap[p].deadline else { break }
            heap.swapAt(i, p)
            i = p
        }
    }

    private mutating func pop() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count, heap[l].deadline < heap[m].deadline { m = l }
            if r < heap.count, heap[r].deadline < heap[m].deadline { m = r }
            if m == i { return }
            heap.swapAt(i, m)
            i = m
        }
    }
}
