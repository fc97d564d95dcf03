import CURing  // in release builds MSG_DONTWAIT resolves through liburing's <sys/socket.h>
import Glibc
import Logging
import PlenumCluster
import PlenumMemory
import PlenumRegion
import PlenumRing
import PlenumStore
import PlenumWire

/// A store's links to its peers (SPEC §10.3): the peer regions it maps, one
/// outbound and one inbound ring per peer, heartbeats, doorbells. Turns
/// shared memory into `ClusterEvent`s and `.send` actions into posts; the
/// protocol itself is `ClusterCore`'s.
final class PeerLinks {
    typealias State = PeerWatch.State

    struct Queued {
        var kind: UInt16
        var correlation: UInt64
        var body: [UInt8]
    }

    final class Link {
        let peer: NodeID
        var producer: RingProducer<MappedMemory>?
        var consumer: RingConsumer<MappedMemory>?
        var outBlock: LinkBlock?
        var inBlock: LinkBlock?
        var outMemory: MappedMemory?
        var inMemory: MappedMemory?
        /// Messages the ring had no room for, in order (a struct, not a
        /// tuple: an array of tuples copies and destroys its elements
        /// through the runtime's generic tuple witnesses, callgrind).
        var queue: [Queued] = []
        var queueHead = 0
        /// Posted since the peer's doorbell was last looked at (`flush`
        /// rings it if the peer sleeps, once per batch).
        var unrung = false
        /// The failure detector's view of the peer (heartbeats, hello).
        var watch = PeerWatch()
        var state: State { get { watch.state } set { watch.state = newValue } }
        var seen: UInt64 { get { watch.seen } set { watch.seen = newValue } }
        var lastBeatAt: UInt64 { watch.lastBeatAt }
        var lastError = ""
        var fullEvents = 0
        var corrupt = 0
        var dropped = 0
        /// Outbound messages dropped because the queue was at its bound.
        var overflow = 0
        var sent = 0
        var received = 0
        init(peer: NodeID) { self.peer = peer }
        var attached: Bool { producer != nil && consumer != nil }
        var pending: Int { queue.count - queueHead }
    }

    /// A peer this node shares no memory with, reached through `via`
    /// (SPEC §10.3): live while its relayed hellos keep coming.
    final class Relayed {
        let peer: NodeID
        let via: NodeID
        var state = State.waiting
        var seen: UInt64 = 0
        var lastHelloAt: UInt64 = 0
        var sent = 0
        var received = 0
        var dropped = 0
        init(peer: NodeID, via: NodeID) { self.peer = peer; self.via = via }
    }

    let config: ClusterConfig
    let plan: RingPlan
    var relayed: [NodeID: Relayed] = [:]
    /// Messages this node forwarded for others.
    var forwarded = 0
    let me: NodeID
    let incarnation: UInt64
    let own: Region
    let logger: Logger
    /// Repeated warnings per peer are aggregated (SPEC §9.4 "Limits").
    var warnings = LogLimiter()
    /// The daemon's hop trace (SPEC §9.2 0x17), shared.
    var trace = HopTraceLog()
    /// Bell datagrams sent to sleeping peers (status `wait.bells_rung`).
    var bellsRung = 0
    /// Peers not met since this node started; each leaves when it comes up,
    /// or is reported `peerAbsent` once silent for `dead_after_ms` since the
    /// start (SPEC §10.4 "Starting").
    var unmet: Set<NodeID>
    let startedAt = monotonicNanos()
    /// Damaged descriptors of hosted blocks rewritten (status `link_blocks_repaired`).
    var blocksRepaired = 0
    var links: [NodeID: Link] = [:]
    var peerRegions: [NodeID: Region] = [:] { didSet { regionsChanged?() } }
    /// Called at every change of `peerRegions`: a reader that caches a
    /// peer's mapping (PeerIndexes) lets go of it there, so a replaced
    /// file is unmapped as soon as this node drops it.
    var regionsChanged: (() -> Void)?
    /// The inode each peer region was mapped from: a peer that restarts
    /// cleanly creates a new file, which a stale mapping would never show.
    var regionInodes: [NodeID: UInt64] = [:]
    var handles: [NodeID: Int] = [:]
    var nextHandle = 1
    var beat: UInt64 = 0
    /// The heartbeat this node last published (for a block attached between ticks).
    var lastLoad: Heartbeat?
    var bellSender: Int32 = -1
    /// The transport's carrier when it is not the rings (SPEC §10.11), and
    /// where it leaves what arrives.
    var carrier: PeerCarrier?
    var inbox: PeerInbox?
    /// Messages the carrier delivered from a node that is not a peer, or
    /// that did not come up in time (dropped).
    var carrierRefused = 0
    /// Carried messages from a node whose hello has not arrived yet.
    var parked: [NodeID: [(UInt64, PeerMessage, UInt64)]] = [:]
    var blockBytes: Int { LinkBlock.bytes(line: config.lineSize, slots: config.ringSlots, slotSize: config.ringSlotSize) }
    var deadAfter: UInt64 { UInt64(config.deadAfterMillis) * 1_000_000 }

    init(config: ClusterConfig, plan: RingPlan, me: NodeID, incarnation: UInt64, own: Region, logger: Logger) {
        self.config = config
        self.plan = plan
        self.me = me
        self.incarnation = incarnation
        self.own = own
        self.logger = logger
        unmet = Set(config.nodes.map(\.id)).subtracting([me])
        for n in config.nodes where n.id != me {
            if let via = plan.relay(from: me, to: n.id) { relayed[n.id] = Relayed(peer: n.id, via: via) } else { links[n.id] = Link(peer: n.id) }
        }
        bellSender = socket(AF_UNIX, 2 /* SOCK_DGRAM */ | 0o2000000 /* SOCK_CLOEXEC */, 0)
    }

    deinit { if bellSender >= 0 { close(bellSender) } }

    // MARK: heartbeat tick

    /// Publishes this node's heartbeat in every outbound block, reads every
    /// peer's, attaches what can be attached, declares the silent dead.
    func tick(now: UInt64, load: Heartbeat, into events: inout [ClusterEvent]) {
        beat += 1
        if !parked.isEmpty { expireParked(now: now) }
        var hb = load
        hb.beat = beat
        hb.incarnation = incarnation
        lastLoad = hb
        repairHosted()
        for l in links.values.sorted(by: { $0.peer < $1.peer }) {
            var working = false
            if case .up = l.state, l.attached { working = true }
            if !working, replaced(l) {
                // Not working, and its memory is a new file: map it afresh.
                detach(l)
            } else if working, replaced(l, present: true) {
                // A new file where a live peer's memory was: a new life of
                // the peer (a restarted node creates its region anew, §10.8).
                events.append(.peerDown(l.peer, why: "restarted (new region file)"))
                logger.warning("peer restarted", metadata: ["peer": "\(l.peer)", "why": "new region file"])
                l.state = .waiting
                l.seen = 0
                detach(l)
            }
            if !l.attached { attach(l) }
            // Heartbeats travel whether or not the ring works: a link whose
            // ring is damaged keeps its peer alive only while the peer beats,
            // and a peer that stops beating is fenced all the same.
            if let (ob, om) = heartbeatBlock(l, outbound: true) { hb.publish(at: ob.heartbeat, in: om) }
            // An idle producer serves its consumer's reset request (SPEC §5.3 "Idle").
            if l.pending == 0, l.producer?.serveResetRequest() == true { l.queue = [] }
            guard let (ib, im) = heartbeatBlock(l, outbound: false),
                  let theirs = Heartbeat.read(at: ib.heartbeat, in: im) else {
                // Unreadable (torn or damaged): it counts as silence.
                declareDeadIfSilent(l, now: now, into: &events)
                continue
            }
            if case .newLife(let wasUp) = l.watch.observe(incarnation: theirs.incarnation, beat: theirs.beat, now: now) {
                // A new life of the peer: its regions and rings are new.
                if wasUp { events.append(.peerDown(l.peer, why: "restarted (new incarnation)")) }
                logger.warning("peer restarted", metadata: ["peer": "\(l.peer)"])
                detach(l)
                continue
            }
            if l.watch.pendingHello != 0, l.watch.pendingHello == theirs.incarnation { hello(l, l.watch.pendingHello, into: &events) }
            if case .up = l.state, !declareDeadIfSilent(l, now: now, into: &events) {
                events.append(.peerLoad(l.peer, theirs.load))
            }
        }
        if !unmet.isEmpty { resolveUnmet(now: now, into: &events) }
        for r in relayed.values.sorted(by: { $0.peer < $1.peer }) {
            // A relayed hello per tick is the relayed peer's heartbeat.
            send(.hello(incarnation: incarnation), to: r.peer, correlation: 0)
            if case .up = r.state, now &- r.lastHelloAt > deadAfter {
                let ms = (now &- r.lastHelloAt) / 1_000_000
                logger.warning("relayed peer dead", metadata: ["peer": "\(r.peer)", "via": "\(r.via)", "silent_ms": "\(ms)"])
                r.state = .fenced(r.seen)
                events.append(.peerDown(r.peer, why: "no relayed hello through node \(r.via) for \(ms) ms (timeout \(config.deadAfterMillis) ms)"))
            }
        }
    }

    /// Peers not met since the start: met ones leave; one silent for
    /// `dead_after_ms` since the start (its beat never moved, or no line
    /// to read) is reported absent, so the core stops waiting for it.
    func resolveUnmet(now: UInt64, into events: inout [ClusterEvent]) {
        for n in unmet.sorted() {
            var up = false, heard = startedAt
            if let l = links[n] {
                if case .up = l.state { up = true }
                heard = max(heard, l.lastBeatAt)
            } else if let r = relayed[n] {
                if case .up = r.state { up = true }
                heard = max(heard, r.lastHelloAt)
            }
            if up { unmet.remove(n); continue }
            guard now &- heard > deadAfter else { continue }
            unmet.remove(n)
            logger.info("peer absent at start", metadata: ["peer": "\(n)", "silent_ms": "\((now &- heard) / 1_000_000)"])
            events.append(.peerAbsent(n))
        }
    }

    /// The block whose heartbeat line this node writes (outbound) or reads:
    /// the attached one, else wherever the plan puts it.
    func heartbeatBlock(_ l: Link, outbound: Bool) -> (LinkBlock, MappedMemory)? {
        if outbound, let b = l.outBlock, let m = l.outMemory { return (b, m) }
        if !outbound, let b = l.inBlock, let m = l.inMemory { return (b, m) }
        return outbound ? placed(me, l.peer) : placed(l.peer, me)
    }

    /// An up peer whose beat has not moved for `dead_after_ms` is dead; it
    /// stays fenced until a new incarnation says hello.
    @discardableResult
    func declareDeadIfSilent(_ l: Link, now: UInt64, into events: inout [ClusterEvent]) -> Bool {
        guard let silent = l.watch.fenceIfSilent(now: now, deadAfter: deadAfter) else { return false }
        let ms = silent / 1_000_000
        logger.warning("peer dead", metadata: ["peer": "\(l.peer)", "silent_ms": "\(ms)"])
        l.queue = []
        l.queueHead = 0
        events.append(.peerDown(l.peer, why: "heartbeat silent for \(ms) ms (timeout \(config.deadAfterMillis) ms)"))
        return true
    }

    // MARK: messages

    /// Messages a link queues at most while its ring is full; beyond, the
    /// peer is not consuming and new messages are dropped (their requests
    /// time out with a clear error).
    static let maxQueued = 1 << 16

    func send(_ m: PeerMessage, to n: NodeID, correlation: UInt64) {
        if let carrier, m.kind != .hello {
            // Every pair talks directly over a carrier; only liveness (the
            // hellos) stays on the rings and relays.
            guard isUp(n) else { return }
            carrier.send(m, correlation: correlation, to: n)
            trace.record(.peerOut, kind: m.kind.rawValue, key: correlation, peer: n)
            return
        }
        if let r = relayed[n] {
            // Hellos go out while waiting too: they are what brings it up.
            if case .hello = m {} else { guard case .up = r.state else { return } }
            guard let l = links[r.via], case .up = l.state else { return }
            if enqueue(l, .relay(to: n, from: me, kind: m.kind.rawValue, correlation: correlation, body: m.encodeBody()), correlation: 0) { r.sent += 1 }
            return
        }
        guard let l = links[n], case .up = l.state else { return }
        enqueue(l, m, correlation: correlation)
    }

    /// Posts a message on a direct link at once when nothing waits before
    /// it (the peer sees it while this node carries on; its doorbell is
    /// looked at once the batch is done, `flush`), else queues it, within
    /// its bound.
    @discardableResult
    func enqueue(_ l: Link, _ m: PeerMessage, correlation: UInt64) -> Bool {
        let q = Queued(kind: m.kind.rawValue, correlation: correlation, body: m.encodeBody())
        if l.pending == 0, l.producer != nil {
            switch post(q, on: l) {
            case .posted?:
                l.unrung = true
                return true
            case nil: return true   // the ring is unusable: re-attached by the tick, as in flush
            default: break          // full: queued
            }
        }
        guard l.pending < Self.maxQueued else {
            l.overflow += 1
            warnings.warning(logger, key: "overflow-\(l.peer)", "peer not consuming: message dropped", metadata: ["peer": "\(l.peer)", "dropped": "\(l.overflow)"], now: monotonicNanos())
            return false
        }
        l.queue.append(q)
        return true
    }

    /// One message into the link's ring (SPEC §10.3): the post's result, or
    /// nil when the ring is unusable (the link is detached then).
    func post(_ m: Queued, on l: Link) -> PostResult? {
        let r: PostResult
        // Posted in place, as the consumer is polled.
        do { r = try m.body.withUnsafeBytes { try l.producer!.post(kind: m.kind, requestId: m.correlation, payload: $0) } } catch {
            // Aggregated (SPEC §9.4 "Limits"): a ring that stays unusable
            // is re-attached every tick, and one line per attempt flooded
            // the log (issue 23).
            warnings.warning(logger, key: "unusable-\(l.peer)", "peer ring unusable; re-attaching",
                             metadata: ["peer": "\(l.peer)", "error": "\(error)"], now: monotonicNanos())
            l.producer = nil
            l.consumer = nil
            return nil
        }
        switch r {
        case .posted:
            l.sent += 1
            trace.record(.peerOut, kind: m.kind, key: m.correlation, peer: l.peer)
        case .full: l.fullEvents += 1
        default: break
        }
        return r
    }

    /// Posts what waits, takes what arrived. Returns messages handled.
    func poll(into events: inout [ClusterEvent], budget: Int = 64) -> Int {
        var handled = 0
        for l in links.values where l.attached {
            handled += flush(l)
            var n = 0
            // Polled in place (a copy of the consumer per poll costs more than the poll).
            while n < budget, l.consumer != nil {
                n += 1
                var got: (UInt16, UInt64, [UInt8])?
                let r = l.consumer!.poll { got = ($0.kind, $0.requestId, Array($0.payload)) }
                switch r {
                case .empty: n = budget
                case .corrupt(let why):
                    l.corrupt += 1
                    warnings.warning(logger, key: "corrupt-\(l.peer)", "peer ring corrupt", metadata: ["peer": "\(l.peer)", "why": "\(why)", "count": "\(l.corrupt)"], now: monotonicNanos())
                case .delivered:
                    handled += 1
                    l.received += 1
                    guard let (kind, corr, body) = got else { continue }
                    let message: PeerMessage
                    do { message = try PeerMessage.decode(kind: kind, body: body) } catch {
                        l.corrupt += 1
                        warnings.warning(logger, key: "malformed-\(l.peer)", "malformed peer message", metadata: ["peer": "\(l.peer)", "why": "\(error)", "count": "\(l.corrupt)"], now: monotonicNanos())
                        continue
                    }
                    if case .hello(let inc) = message { hello(l, inc, into: &events); continue }
                    guard case .up = l.state else { l.dropped += 1; continue }
                    if case .relay(let to, let from, let kind, let c, let body) = message {
                        relay(to: to, from: from, kind: kind, correlation: c, body: body, arrivedFrom: l, into: &events)
                        continue
                    }
                    trace.record(.peerIn, kind: kind, key: corr, peer: l.peer)
                    events.append(.message(from: l.peer, correlation: corr, message))
                }
            }
        }
        if inbox != nil { handled += takeCarried(into: &events, max: 4 * budget) }
        return handled
    }

    /// Posts queued messages while the ring has room; rings the peer's
    /// doorbell if it sleeps.
    func flush(_ l: Link) -> Int {
        guard l.producer != nil, l.pending > 0 || l.unrung else { return 0 }
        var posted = 0
        while l.queueHead < l.queue.count {
            guard let r = post(l.queue[l.queueHead], on: l) else { return posted }
            guard case .posted = r else { break }
            l.queueHead += 1
            posted += 1
        }
        if l.queueHead == l.queue.count, !l.queue.isEmpty { l.queue.removeAll(keepingCapacity: true); l.queueHead = 0 }
        if posted > 0 || l.unrung {
            l.unrung = false
            ringBellIfAsleep(l)
        }
        return posted
    }

    /// Doorbell (SPEC §10.3): after posting, fence(.full); invalidate the
    /// consumer's doorbell line; fence(.full); load; if it sleeps, send one
    /// datagram to its bell socket.
    func ringBellIfAsleep(_ l: Link) {
        guard config.bells, let ob = l.outBlock, let om = l.outMemory else { return }
        om.fence(.full)
        om.invalidate(at: ob.doorbell, count: 8)
        om.fence(.full)
        guard om.load64(at: ob.doorbell, ordering: .acquiring) != 0, let node = config.node(l.peer) else { return }
        var byte: UInt8 = 1
        bellsRung += 1
        _ = try? UnixSocket.withAddress(node.bell) { addr, len in sendto(bellSender, &byte, 1, Int32(MSG_DONTWAIT), addr, len) }
        trace.record(.peerBell, kind: 0, key: 0, peer: l.peer)
    }

    /// Publishes (or clears) "this node sleeps" in every inbound block's
    /// doorbell line (writer: this node): store; fence(.full); flush; fence.
    func setSleeping(_ sleeping: Bool) {
        inbox?.setSleeping(sleeping)
        for l in links.values where l.attached {
            guard let ib = l.inBlock, let im = l.inMemory else { continue }
            // Acknowledge what was taken before sleeping (SPEC §5.4 step 6),
            // so a producer never waits on a sleeper's stale acknowledgement.
            if sleeping { l.consumer?.flushAcknowledgements() }
            // Bells off: no producer reads the word (SPEC §10.3 "No bells").
            guard config.bells else { continue }
            im.store64(sleeping ? 1 : 0, at: ib.doorbell, ordering: .releasing)
            im.fence(.full)
            im.flush(at: ib.doorbell, count: 8)
            im.fence(.store)
        }
    }

    /// Posts what every link has queued; returns how many went.
    func flushAll() -> Int { links.values.reduce(0) { $0 + ($1.attached ? flush($1) : 0) } }

    var anyAttached: Bool { links.values.contains { $0.attached } }
    var anyPending: Bool { links.values.contains { $0.pending > 0 && $0.attached } }

    // MARK: zero-copy for clients

    /// Region handle → (node, region) for the peers mapped now.
    func region(handle: Int) -> (NodeID, Region)? {
        for (n, h) in handles where h == handle { if let r = peerRegions[n] { return (n, r) } }
        return nil
    }
}
