import PlenumCluster
import PlenumStore
import Prometheus

/// What a store counts, in the Prometheus text format (SPEC §10.9
/// "Metrics"). Two kinds of series:
///
/// ```
///  per request (hot path, swift-prometheus's collectors):
///    begin(client, rid, request) ── current = (op, start, peer work so far)
///    handled, no reply yet ── settle: pending[(client, rid)] = current, its scope fixed
///    reply ─ end(client, rid, response) ─▶ plenum_operations_total{op, outcome, scope}
///                                        plenum_operation_duration_seconds{op, scope} (histogram)
///                                        plenum_created_bytes_total, plenum_read_bytes_total
///    scope = "remote" when handling the request sent a peer message (not a
///    notification) or read a peer's directory index, else "local"
///  per scrape (read from the store's own state, nothing on the hot path):
///    memory, objects, clients, evictions, directory, references, peers, rings
/// ```
/// Every series carries `node`. Used from the loop's thread only.
final class StoreMetrics {
    let node: String
    private struct Pending { var client: UInt64; var rid: UInt64; var op: Int; var start: UInt64; var peerWork: Int; var remote = false }
    /// The request being handled now: most replies come before its handling
    /// returns, and are matched here without touching `pending`.
    private var current: Pending?
    private struct Key: Hashable { let client: UInt64; let rid: UInt64 }
    private var pending: [Key: Pending] = [:]
    /// Per (op, scope, outcome): replies; per (op, scope): a latency
    /// histogram (counts per bucket of `bucketNanos`, the last +Inf), its
    /// sum and count. Plain integers on the hot path: swift-prometheus's
    /// histogram costs ~1,100 instructions per observation (callgrind),
    /// more than the rest of a local `contains`; a scrape turns these into
    /// the exposition.
    private var replies: [Int]
    private var buckets: [[UInt64]]
    private var sums: [UInt64]
    private var createdBytes = 0
    private var readBytes = 0
    /// Requests still unanswered after this many are not timed (a client
    /// that never reads its replies cannot grow the table without bound).
    static let maxPending = 65_536

    static let durationName = "plenum_operation_duration_seconds"
    /// Upper bounds of the latency buckets (ns): 1 µs … 1 s.
    static let bucketNanos: [UInt64] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 50_000, 100_000, 1_000_000].map { $0 * 1_000 }
    /// The `op` label of each operation, by index.
    static let ops = ["create", "seal", "abort", "get", "release", "contains", "delete", "list", "evict", "subscribe", "stats", "refresh",
                      "create_on", "barrier", "create_and_seal"]

    /// A family's name (already in Prometheus's conventions) and help.
    static func family(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    init(node: NodeID?) {
        self.node = node.map { "\($0)" } ?? "0"
        replies = Array(repeating: 0, count: Self.ops.count * 4)
        buckets = Array(repeating: Array(repeating: 0, count: Self.bucketNanos.count + 1), count: Self.ops.count * 2)
        sums = Array(repeating: 0, count: Self.ops.count * 2)
    }

    /// The index of a request's operation in `ops`.
    static func op(_ r: StoreRequest) -> Int {
        switch r {
        case .create: return 0
        case .seal: return 1
        case .abort: return 2
        case .get: return 3
        case .release: return 4
        case .contains: return 5
        case .delete: return 6
        case .list: return 7
        case .evict: return 8
        case .subscribe: return 9
        case .stats: return 10
        case .refresh: return 11
        }
    }

    static func op(_ r: ClusterRequest) -> Int {
        switch r {
        case .createOn: return 12
        case .barrier: return 13
        }
    }

    static let createAndSeal = 14

    /// A request arrives (the shell calls `settle` once it is handled).
    func begin(client: UInt64, rid: UInt64, op: Int, now: UInt64, peerWork: Int) {
        current = Pending(client: client, rid: rid, op: op, start: now, peerWork: peerWork)
    }

    /// Its handling returned: unanswered, it waits for its reply in
    /// `pending`, remote if its own handling took a peer's part (what
    /// other requests do meanwhile is theirs).
    func settle(peerWork: Int) {
        guard var p = current else { return }
        current = nil
        p.remote = peerWork != p.peerWork
        if pending.count < Self.maxPending { pending[Key(client: p.client, rid: p.rid)] = p }
    }

    /// A reply went out: counted and timed if its request was begun.
    func end(client: UInt64, rid: UInt64, _ response: StoreResponse, now: UInt64, peerWork: Int) {
        let p: Pending, remote: Int
        if let c = current, c.client == client, c.rid == rid {
            p = c
            remote = peerWork != c.peerWork ? 1 : 0
            current = nil
        } else if !pending.isEmpty, let q = pending.removeValue(forKey: Key(client: client, rid: rid)) {
            p = q
            remote = q.remote ? 1 : 0
        } else {
            return
        }
        let failed = Self.failed(response) ? 1 : 0
        replies[(p.op * 2 + remote) * 2 + failed] += 1
        let t = p.op * 2 + remote, d = now &- p.start
        var b = 0
        while b < Self.bucketNanos.count, d > Self.bucketNanos[b] { b += 1 }
        buckets[t][b] += 1
        sums[t] &+= d
        switch response {
        case .created(let l): createdBytes += l.dataSize + l.metadataSize
        case .objects(let ls): readBytes += ls.reduce(0) { $0 + ($1.map { $0.dataSize + $0.metadataSize } ?? 0) }
        default: break
        }
    }

    /// Bytes of an object created and sealed in one request (create-and-seal).
    func created(bytes: Int) { createdBytes += bytes }

    /// A client that left: its unanswered requests are not timed.
    func forget(client: UInt64) {
        if current?.client == client { current = nil }
        if !pending.isEmpty { pending = pending.filter { $0.key.client != client } }
    }

    static func failed(_ r: StoreResponse) -> Bool {
        switch r {
        case .error: return true
        case .deleted(let e), .createdAndSealed(let e): return e.contains { $0 != nil }
        case .evicted, .objects, .created, .sealed, .aborted, .released, .contains, .list, .subscribed, .stats, .refreshed, .barrierPassed: return false
        }
    }

    /// The whole text: the state read now, then the per-request series.
    func render(_ snapshot: MetricsSnapshot) -> String {
        let now = PrometheusCollectorRegistry()
        let n = [("node", node)]
        func gauge(_ name: String, _ help: String, _ v: Int, _ labels: [(String, String)] = []) {
            now.makeGauge(descriptor: Self.family(name, help), labels: n + labels).set(Double(v))
        }
        func counter(_ name: String, _ help: String, _ v: Int, _ labels: [(String, String)] = []) {
            now.makeCounter(descriptor: Self.family(name, help), labels: n + labels).increment(by: Int64(max(0, v)))
        }
        let s = snapshot
        gauge("plenum_memory_capacity_bytes", "Bytes of this node's object memory.", s.store.capacity)
        gauge("plenum_memory_used_bytes", "Bytes of object memory allocated.", s.store.used)
        gauge("plenum_memory_free_bytes", "Bytes of object memory free.", s.store.capacity - s.store.used)
        gauge("plenum_objects", "Objects in this node's memory, sealed or not.", s.store.objects)
        gauge("plenum_clients", "Connected clients.", s.clients)
        counter("plenum_evictions_total", "Objects evicted to make room.", s.store.evictions)
        counter("plenum_evicted_bytes_total", "Bytes of the objects evicted.", s.store.evictedBytes)
        gauge("plenum_directory_entries", "Directory entries this node is home of.", s.directoryEntries)
        gauge("plenum_digests_pending", "Sealed objects whose digest the store has still to take (Plasma seals on a store alone).", s.digestsPending)
        counter("plenum_directory_index_peeks_total", "Lookups answered from a peer's directory index.", s.cluster.indexPeeks)
        counter("plenum_directory_index_asked_total", "Lookups a peer's directory index could not answer (asked by message).", s.cluster.indexMisses)
        counter("plenum_digest_mismatches_total", "Remote objects refused because their bytes did not match their seal-time digest.", s.cluster.digestMismatches)
        counter("plenum_peer_request_timeouts_total", "Peer requests that timed out.", s.cluster.peerTimeouts)
        counter("plenum_peer_deaths_total", "Peers declared dead.", s.cluster.deaths)
        counter("plenum_peer_joins_total", "Peers met (first time or a new life).", s.cluster.joins)
        counter("plenum_peer_messages_refused_total", "Peer messages refused (unknown sender, bad content).", s.cluster.refusedMessages)
        for p in s.peers {
            let l = [("peer", "\(p.peer)")]
            gauge("plenum_peer_up", "1 while the peer is live in this node's view.", p.alive ? 1 : 0, l)
            counter("plenum_peer_messages_sent_total", "Peer messages sent to the peer.", p.sent, l)
            counter("plenum_peer_messages_received_total", "Peer messages received from the peer.", p.received, l)
            counter("plenum_ring_full_events_total", "Posts that found the ring to the peer full.", p.fullEvents, l)
            counter("plenum_ring_corrupt_slots_total", "Corrupt slots found in the ring from the peer.", p.corrupt, l)
            gauge("plenum_references_held", "References this node's clients hold on objects in the peer's memory.", p.held, l)
            gauge("plenum_references_lent", "References the peer holds on objects in this node's memory.", p.lent, l)
        }
        counter("plenum_created_bytes_total", "Bytes of the objects clients created here (data and metadata).", createdBytes)
        counter("plenum_read_bytes_total", "Bytes of the objects clients of this node got (local or remote).", readBytes)
        for op in Self.ops.indices { for remote in 0...1 { for failed in 0...1 {
            let v = replies[(op * 2 + remote) * 2 + failed]
            guard v > 0 else { continue }
            counter("plenum_operations_total", "Client requests answered, by operation, outcome and scope (remote: a peer took part).", v,
                    [("op", Self.ops[op]), ("outcome", failed == 1 ? "error" : "ok"), ("scope", remote == 1 ? "remote" : "local")])
        } } }
        return now.emitToString() + histogramText()
    }

    /// The latency histograms in the text format (the one family written
    /// here rather than by the library, see `buckets`): cumulative buckets
    /// with `le` in seconds, then `_sum` and `_count`, series in a fixed order.
    private func histogramText() -> String {
        var lines: [String] = []
        for op in Self.ops.indices { for remote in 0...1 {
            let t = op * 2 + remote
            let count = buckets[t].reduce(0, +)
            guard count > 0 else { continue }
            let labels = "node=\"\(node)\",op=\"\(Self.ops[op])\",scope=\"\(remote == 1 ? "remote" : "local")\""
            var cumulative: UInt64 = 0
            for (b, n) in buckets[t].enumerated() {
                cumulative += n
                let le = b < Self.bucketNanos.count ? Self.seconds(Self.bucketNanos[b]) : "+Inf"
                lines.append("\(Self.durationName)_bucket{\(labels),le=\"\(le)\"} \(cumulative)")
            }
            lines.append("\(Self.durationName)_sum{\(labels)} \(Self.seconds(sums[t]))")
            lines.append("\(Self.durationName)_count{\(labels)} \(count)")
        } }
        guard !lines.isEmpty else { return "" }
        return "# HELP \(Self.durationName) Time from a request's arrival to its reply, by operation and scope.\n# TYPE \(Self.durationName) histogram\n"
            + lines.joined(separator: "\n") + "\n"
    }

    /// Nanoseconds as seconds, exactly (no floating-point rounding): "0.000001".
    static func seconds(_ ns: UInt64) -> String {
        let whole = ns / 1_000_000_000, frac = ns % 1_000_000_000
        guard frac > 0 else { return "\(whole)" }
        var f = String(frac)
        f = String(repeating: "0", count: 9 - f.count) + f
        while f.hasSuffix("0") { f.removeLast() }
        return "\(whole).\(f)"
    }
}

/// The state a scrape reads (the daemon fills it from its core and links).
struct MetricsSnapshot {
    struct Peer { var peer: NodeID; var alive: Bool; var sent: Int; var received: Int; var fullEvents: Int; var corrupt: Int; var held: Int; var lent: Int }
    var store: StoreStats
    var clients: Int
    var directoryEntries: Int
    /// Plasma objects sealed whose digest is still to be taken (SPEC §11.3 "Seal").
    var digestsPending: Int
    var cluster: ClusterCounters
    var peers: [Peer]
}
