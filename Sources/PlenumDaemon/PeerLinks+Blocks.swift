import Glibc
import PlenumCluster
import PlenumMemory
import PlenumRegion
import PlenumRing

/// Where a peer link's blocks live and how a link takes them up (SPEC
/// §10.3 "Attach", "Repair", "Re-map a replaced file"): formatting the
/// blocks this node hosts, mapping peer regions, locating and repairing
/// blocks, attaching and detaching rings.
extension PeerLinks {
    /// Formats every link block this node's region hosts (owner only, at
    /// start): each ring per §5.2, control lines zeroed.
    static func formatHosted(in region: Region, segment: Segment, config: ClusterConfig, plan: RingPlan, me: NodeID) throws {
        let m = region.memory()
        let bytes = LinkBlock.bytes(line: config.lineSize, slots: config.ringSlots, slotSize: config.ringSlotSize)
        for pair in plan.hosted[me] ?? [] {
            let site = plan.site(from: pair[0], to: pair[1])!
            let block = try LinkBlock(base: segment.offset + site.index * bytes, line: config.lineSize, slots: config.ringSlots, slotSize: config.ringSlotSize)
            m.write(at: block.base, count: 2 * config.lineSize) { _ = $0.initializeMemory(as: UInt8.self, repeating: 0) }
            m.fence(.store)
            m.flush(at: block.base, count: 2 * config.lineSize)
            m.fence(.store)
            Ring.format(block.ring, producer: pair[0], consumer: pair[1], in: m)
        }
    }

    // MARK: attach

    /// The memory that hosts `host`'s link blocks, mapping a peer region by
    /// its path on this node when needed.
    func memory(of host: NodeID) -> MappedMemory? {
        if host == me { return own.memory() }
        if let r = peerRegions[host] { return r.memory() }
        guard let path = config.node(me)?.reach[host] else { return nil }
        do {
            let r = try Region.open(at: path)
            guard r.header.ownerNode == host else {
                links[host]?.lastError = "\(path) belongs to node \(r.header.ownerNode), not \(host)"
                return nil
            }
            peerRegions[host] = r
            regionInodes[host] = Self.inode(path)
            handles[host] = nextHandle
            nextHandle += 1
            return r.memory()
        } catch {
            links[host]?.lastError = "\(path): \(error)"
            return nil
        }
    }

    /// Where block p→c lies — the plan and its host's segment table alone,
    /// no ring check: its heartbeat line is read and written even while its
    /// ring is damaged (liveness is the heartbeats', SPEC §10.3 "Death").
    func placed(_ p: NodeID, _ c: NodeID) -> (LinkBlock, MappedMemory)? {
        guard let site = plan.site(from: p, to: c), let m = memory(of: site.host) else { return nil }
        let header = site.host == me ? own.header : peerRegions[site.host]!.header
        guard let seg = try? SegmentTable.find("peer-links", in: m, header: header),
              (site.index + 1) * blockBytes <= seg.length,
              let b = try? LinkBlock(base: seg.offset + site.index * blockBytes, line: config.lineSize, slots: config.ringSlots, slotSize: config.ringSlotSize)
        else { return nil }
        return (b, m)
    }

    /// Block p→c with a ring that describes as the plan says (SPEC §10.3 "Attach").
    func block(_ p: NodeID, _ c: NodeID) -> (LinkBlock, MappedMemory)? {
        guard let (b, m) = placed(p, c),
              let d = try? Ring.describe(at: b.ring.base, length: blockBytes - 2 * config.lineSize, in: m),
              d.producer == p, d.consumer == c, d.layout == b.ring
        else { return nil }
        return (b, m)
    }

    /// Repair (SPEC §10.3): the host rewrites the descriptor of every block
    /// it hosts that no longer reads as format wrote it, so a peer that
    /// dropped its ring can attach again without anyone restarting.
    func repairHosted() {
        for pair in plan.hosted[me] ?? [] {
            guard let (b, m) = placed(pair[0], pair[1]),
                  Ring.repairDescriptor(b.ring, producer: pair[0], consumer: pair[1], in: m) else { continue }
            blocksRepaired += 1
            warnings.warning(logger, key: "repair-\(pair[0])-\(pair[1])", "link block descriptor damaged; rewritten",
                             metadata: ["pair": "\(pair[0])->\(pair[1])", "repaired": "\(blocksRepaired)"], now: monotonicNanos())
        }
    }

    static func inode(_ path: String) -> UInt64? {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_ino) : nil
    }

    /// Whether a peer region this link uses was replaced (or, unless
    /// `present`, removed) on disk.
    func replaced(_ l: Link, present: Bool = false) -> Bool {
        for host in Set([plan.site(from: me, to: l.peer)?.host, plan.site(from: l.peer, to: me)?.host, l.peer].compactMap { $0 }) where host != me {
            guard peerRegions[host] != nil, let path = config.node(me)?.reach[host] else { continue }
            let now = Self.inode(path)
            if present, now == nil { continue }
            if now != regionInodes[host] { return true }
        }
        return false
    }

    func attach(_ l: Link) {
        guard let (ob, om) = block(me, l.peer), let (ib, im) = block(l.peer, me) else {
            if l.lastError.isEmpty { l.lastError = "rings not reachable yet (is node \(l.peer) running?)" }
            return
        }
        do {
            var p = try RingProducer(memory: om, layout: ob.ring)
            // Anything a previous life of this node left unread is stale.
            p.reset()
            l.producer = p
        } catch {
            l.lastError = "outbound ring: \(error)"
            return
        }
        l.consumer = RingConsumer(memory: im, layout: ib.ring, ackBatch: 16)
        l.outBlock = ob
        l.inBlock = ib
        l.outMemory = om
        l.inMemory = im
        l.queue = [Queued(kind: PeerMessage.Kind.hello.rawValue, correlation: 0, body: PeerMessage.hello(incarnation: incarnation).encodeBody())]
        l.queueHead = 0
        l.lastError = ""
        logger.info("link attached", metadata: ["peer": "\(l.peer)"])
    }

    func detach(_ l: Link) {
        l.producer = nil
        l.consumer = nil
        l.queue = []
        l.queueHead = 0
        l.inBlock = nil
        l.outBlock = nil
        l.inMemory = nil
        l.outMemory = nil
        for host in [plan.site(from: me, to: l.peer)?.host, plan.site(from: l.peer, to: me)?.host, l.peer] {
            if let h = host, h != me { peerRegions[h] = nil; regionInodes[h] = nil }
        }
    }
}
