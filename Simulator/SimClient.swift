import PlenumCluster
import PlenumMemory
import PlenumStore

/// One store client of the `cluster` scenario, on its node: a random mix of
/// create (here or on a named peer) + write + seal or abort, get + read +
/// release, delete and contains, one request at a time, over a small id
/// space. It writes and reads object bytes through its node's cache and
/// takes the writer's steps of SPEC §10.8 with the production `ObjectMemory`
/// — except when it misbehaves as real clients do: it aborts without
/// writing back what it wrote, or dies mid-create (a part written, nothing
/// written back) or mid-read (holding its reference); a new client
/// connects in its place. Its store must clean up after it (§10.8).
final class SimClient {
    static let firstID: ClientID = 1
    /// This node's client now (a new id after each death).
    var cid = SimClient.firstID
    let node: Int
    var remaining: Int
    var rng: SplitMix64
    var rid: UInt64 = 0

    enum Waiting {
        case none
        case create(ObjectID, size: Int)
        case seal(ObjectID, stamp: UInt64)
        case abort(stamp: UInt64)
        case get(ObjectID)
        case other
    }
    var waiting = Waiting.none
    /// The step the request being waited for was sent (liveness, §7.3).
    var issuedAt = 0
    /// The request being waited for, if any (for a stall report).
    var waitingFor: String? { if case .none = waiting { return nil } else { return "\(waiting)" } }

    init(node: Int, operations: Int, seed: UInt64) {
        self.node = node
        remaining = operations
        rng = SplitMix64(seed: seed)
    }

    /// Between a reply and the request it leads to (the client may be
    /// preempted in its reads and writes there).
    var handling = false
    var done: Bool { if case .none = waiting { return remaining == 0 && !handling } else { return false } }

    static func objectID(_ k: Int) -> ObjectID {
        var b = [UInt8](repeating: 0, count: 20)
        b[0] = UInt8(k)
        b[19] = 0x5A
        return ObjectID(bytes: b)!
    }

    /// One step: take a reply if one came, else start the next operation.
    func step(_ w: ClusterWorld, _ memory: SimMemory) -> Bool {
        if case .none = waiting {
            guard remaining > 0 else { return false }
            remaining -= 1
            start(w, memory)
            return true
        }
        guard let r = w.replies[node].removeValue(forKey: rid) else { return false }
        let was = waiting
        waiting = .none
        w.sim.trace(node, "client-reply", line: -1, "\(was) ← \(r)")
        handling = true
        handle(r, to: was, w, memory)
        handling = false
        return true
    }

    private func request(_ w: ClusterWorld, _ memory: SimMemory, _ r: StoreRequest, _ then: Waiting) {
        rid += 1
        w.sim.trace(node, "client-request", line: -1, "\(r)")
        waiting = then
        issuedAt = w.sim.step
        w.apply(node, w.cores[node].handle(.local(.request(cid, requestId: rid, r)), now: w.now), memory)
    }

    private func start(_ w: ClusterWorld, _ memory: SimMemory) {
        let id = Self.objectID(rng.below(ClusterExchange.idSpace))
        switch rng.below(20) {
        case 0..<7:
            let size = 1 + rng.below(3 * memory.lineSize)
            if rng.below(3) == 0 {
                let target = rng.below(w.n)
                rid += 1
                waiting = .create(id, size: size)
                issuedAt = w.sim.step
                w.apply(node, w.cores[node].handle(.cluster(cid, requestId: rid, .createOn(id, dataSize: size, metadataSize: 0, node: UInt32(target))),
                                                   now: w.now), memory)
            } else {
                request(w, memory, .create(id, dataSize: size, metadataSize: 0), .create(id, size: size))
            }
        case 7..<15: request(w, memory, .get([id], timeoutMs: 0), .get(id))
        case 15..<18: request(w, memory, .delete([id]), .other)
        default: request(w, memory, .contains(id), .other)
        }
    }

    private func handle(_ r: StoreResponse, to was: Waiting, _ w: ClusterWorld, _ memory: SimMemory) {
        let sim = w.sim
        switch (was, r) {
        case (.create(let id, let size), .created(let l)):
            let (owner, region) = w.region(memory, handle: l.region, of: node)
            let stamp = w.ledger.created(id, owner: owner, offset: l.offset, reserved: l.reserved, size: size, creator: node)
            let bytes = ClusterLedger.pattern(stamp: stamp, size: size)
            let fate = rng.below(24)
            if fate == 0 {
                // Dies mid-create: a part written, nothing written back.
                let part = rng.below(size + 1)
                if part > 0 {
                    region.write(at: l.offset, count: part) { b in bytes.withUnsafeBytes { b.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<part])) } }
                }
                if sim.shouldStop(node) { return }
                w.ledger.uncertain(stamp: stamp)
                die(w, memory, "mid-create of \(id), \(part) of \(size) B written, none written back")
                return
            }
            region.write(at: l.offset, count: size) { b in bytes.withUnsafeBytes { b.copyMemory(from: $0) } }
            // An abort without write-back leaves the lines dirty here.
            let dirtyAbort = fate <= 2
            if !dirtyAbort { ObjectMemory.writeBack(region, l) }
            if sim.shouldStop(node) { return }
            if dirtyAbort || rng.below(6) == 0 {
                // The owner frees it when the abort arrives, before we hear back.
                w.ledger.uncertain(stamp: stamp)
                request(w, memory, .abort(id), .abort(stamp: stamp))
            } else {
                let digest = ObjectMemory.digest(region, l)
                if sim.shouldStop(node) { return }
                w.ledger.sealing(stamp)
                request(w, memory, .seal(id, digest: digest), .seal(id, stamp: stamp))
            }
        case (.seal(_, let stamp), .sealed):
            w.ledger.confirmed(stamp)
        case (.seal(let id, let stamp), .error):
            // The seal did not take (its owner or home is unavailable): abort.
            w.ledger.uncertain(stamp: stamp)
            request(w, memory, .abort(id), .abort(stamp: stamp))
        case (.abort(let stamp), .aborted):
            w.ledger.forget(stamp: stamp)
        case (.abort(let stamp), .error(let e)):
            if case .alreadySealed = e { w.ledger.revive(stamp); w.ledger.confirmed(stamp) }
        case (.get(let id), .objects(let ls)):
            guard let l = ls.first ?? nil else { return }
            let (owner, region) = w.region(memory, handle: l.region, of: node)
            guard let o = w.ledger.acquired(id, owner: owner, offset: l.offset, node: node) else { return }
            let early = memory.mutants.contains(.releaseBeforeRead)
            if early { w.ledger.released(id, node: node); request(w, memory, .release(id), .other) }
            // The client reads line by line, as an application walks an object.
            var bytes: [UInt8] = []
            var at = l.offset
            let diesAfter = !early && rng.below(20) == 0 ? rng.below(l.dataSize + 1) : nil
            while at < l.offset + l.dataSize {
                if let d = diesAfter, at - l.offset >= d {
                    die(w, memory, "mid-read of \(id), holding its reference")
                    return
                }
                let count = min(l.offset + l.dataSize - at, memory.lineSize - at % memory.lineSize)
                if sim.shouldStop(node) { return }
                w.ledger.reading(o, node: node)
                bytes += region.read(at: at, count: count) { Array($0) }
                at += count
            }
            if sim.shouldStop(node) { return }
            w.ledger.read(bytes, of: o, node: node)
            if !early { w.ledger.released(id, node: node); request(w, memory, .release(id), .other) }
        default:
            break   // errors of create, get, delete, contains, release: the ledger learns through the stores' actions
        }
    }

    /// The client process dies: its store sees the disconnect (releases its
    /// references, aborts its unsealed creations) and a new client connects.
    private func die(_ w: ClusterWorld, _ memory: SimMemory, _ what: String) {
        w.sim.trace(node, "client-death", line: -1, "client \(cid) dies \(what)")
        w.ledger.clientDied(node: node)
        w.apply(node, w.cores[node].handle(.local(.disconnected(cid)), now: w.now), memory)
        cid += 1
        if w.sim.shouldStop(node) { return }
        w.apply(node, w.cores[node].handle(.local(.connected(cid)), now: w.now), memory)
    }
}
