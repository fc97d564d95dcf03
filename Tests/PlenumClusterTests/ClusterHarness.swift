import PlenumCluster
import PlenumStore

/// N cluster cores over in-process FIFO links: every message is encoded to
/// its ring body and decoded again, as a ring would carry it. Deterministic.
struct ClusterHarness {
    var nodes: [ClusterCore] = []
    var queues: [[PeerLink]] = []
    var replies: [[(ClientID, UInt64, StoreResponse)]] = []
    var notes: [[(ClientID, StoreNotification)]] = []
    var batchReserved: [UInt64: [StoreError?]] = [:]
    var invalidated: [[ObjectLocation]] = []
    var now: UInt64 = 1_000_000_000
    var digestOK = true
    var delivered = 0
    /// Runs before a node's actions are carried out (a shell's duties, e.g. its directory index).
    var beforeActions: ((inout ClusterHarness, NodeID) -> Void)?

    struct PeerLink { var from: NodeID; var to: NodeID; var corr: UInt64; var kind: UInt16; var body: [UInt8] }

    init(nodes count: Int, capacity: Int = 1 << 20, reach: ((NodeID, NodeID) -> Bool)? = nil) {
        for i in 0..<count {
            let me = NodeID(i)
            let reachable = Set((0..<count).map(NodeID.init).filter { $0 != me && (reach?(me, $0) ?? true) })
            var core = ClusterCore(config: .init(node: me, incarnation: UInt64(100 + i), reachable: reachable),
                                   store: .init(base: 4096, capacity: capacity, lineSize: 64))
            core.config.requestTimeout = 5_000_000_000
            nodes.append(core)
            queues.append([])
            replies.append([])
            notes.append([])
            invalidated.append([])
        }
        for i in 0..<count { for j in 0..<count where i != j { up(NodeID(i), sees: NodeID(j)) } }
        settle()
    }

    mutating func up(_ i: NodeID, sees j: NodeID) {
        let reachable = nodes[Int(i)].config.reachable.contains(j)
        apply(i, nodes[Int(i)].handle(.peerUp(j, PeerInfo(incarnation: UInt64(100 + j), region: Int(j) + 1,
                                                           regionSize: reachable ? (1 << 20) + 8192 : nil)), now: now))
        apply(i, nodes[Int(i)].handle(.peerLoad(j, PeerLoad(capacity: nodes[Int(j)].store.config.capacity, used: nodes[Int(j)].store.stats.used,
                                                           objects: 0, largestFree: nodes[Int(j)].store.stats.allocator.largestFree,
                                                           subscribers: !nodes[Int(j)].store.subscribers.isEmpty)), now: now))
    }

    mutating func apply(_ i: NodeID, _ actions: [ClusterAction]) {
        if let f = beforeActions { f(&self, i) }
        for a in actions {
            switch a {
            case .local(.reply(let c, let rid, let r)): replies[Int(i)].append((c, rid, r))
            case .local(.notify(let c, let n)): notes[Int(i)].append((c, n))
            case .local(.removed), .local(.evicted): break
            case .send(let to, let corr, let m):
                queues[Int(to)].append(PeerLink(from: i, to: to, corr: corr, kind: m.kind.rawValue, body: m.encodeBody()))
            case .checkDigest(let token, _, _, _):
                apply(i, nodes[Int(i)].handle(.digestChecked(token: token, ok: digestOK), now: now))
            case .invalidate(let l): invalidated[Int(i)].append(l)
            case .batchReserved(let token, let r): batchReserved[token] = r
            }
        }
    }

    /// Delivers messages (round robin over nodes) until none is in flight.
    mutating func settle(limit: Int = 100_000) {
        var steps = 0
        while steps < limit, let i = queues.indices.first(where: { !queues[$0].isEmpty }) {
            let m = queues[i].removeFirst()
            steps += 1
            delivered += 1
            guard let decoded = try? PeerMessage.decode(kind: m.kind, body: m.body) else { fatalError("undecodable \(m.kind)") }
            apply(NodeID(i), nodes[i].handle(.message(from: m.from, correlation: m.corr, decoded), now: now))
        }
    }

    mutating func connect(_ c: ClientID, on i: NodeID) {
        apply(i, nodes[Int(i)].handle(.local(.connected(c)), now: now))
    }

    /// Sends a request and settles; returns its reply if one came.
    @discardableResult
    mutating func call(_ r: StoreRequest, client c: ClientID, on i: NodeID, rid: UInt64 = 7) -> StoreResponse? {
        replies[Int(i)].removeAll()
        apply(i, nodes[Int(i)].handle(.local(.request(c, requestId: rid, r)), now: now))
        settle()
        return replies[Int(i)].first { $0.0 == c && $0.1 == rid }?.2
    }

    @discardableResult
    mutating func call(_ r: ClusterRequest, client c: ClientID, on i: NodeID, rid: UInt64 = 7) -> StoreResponse? {
        replies[Int(i)].removeAll()
        apply(i, nodes[Int(i)].handle(.cluster(c, requestId: rid, r), now: now))
        settle()
        return replies[Int(i)].first { $0.0 == c && $0.1 == rid }?.2
    }

    /// create + seal on node i (the bytes are the test's business).
    mutating func put(_ id: ObjectID, size: Int = 100, client c: ClientID, on i: NodeID, node: NodeID? = nil) -> StoreResponse? {
        let r = node == nil ? call(.create(id, dataSize: size, metadataSize: 0), client: c, on: i)
                            : call(.createOn(id, dataSize: size, metadataSize: 0, node: node), client: c, on: i)
        guard case .created? = r else { return r }
        return call(.seal(id, digest: 42), client: c, on: i)
    }

    /// An id homed at `home` (as node 0 computes homes), created and sealed
    /// in `owner`'s memory by client `c` of the owner (connected here).
    mutating func sealed(home: NodeID, owner: NodeID, client c: ClientID) -> ObjectID {
        connect(c, on: owner)
        let id = (0..<500).map(oid).first { nodes[0].home(of: $0) == home }!
        let r = put(id, client: c, on: owner)
        precondition(r == .sealed, "\(String(describing: r))")
        return id
    }

    mutating func kill(_ dead: NodeID) {
        queues[Int(dead)].removeAll()
        for i in nodes.indices where NodeID(i) != dead {
            queues[i].removeAll { $0.from == dead }
            apply(NodeID(i), nodes[i].handle(.peerDown(dead, why: "test"), now: now))
        }
        settle()
    }
}

func oid(_ n: Int) -> ObjectID {
    var b = [UInt8](repeating: 0, count: 20)
    var x = UInt64(n) &* 0x9E37_79B9_7F4A_7C15 &+ 12345
    for i in 0..<20 { x = x &* 6364136223846793005 &+ 1442695040888963407; b[i] = UInt8(truncatingIfNeeded: x >> 33) }
    return ObjectID(bytes: b)!
}
