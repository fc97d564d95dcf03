import Glibc
import Logging
import PlenumCluster
import PlenumMemory
import PlenumRegion
import PlenumRing

/// Who is talking (SPEC §10.3): hellos on direct links, and relay
/// envelopes — forwarded for others or unwrapped for this node.
extension PeerLinks {
    /// A relay envelope: forward it (only a direct peer's own messages, to a
    /// live direct peer), or unwrap it when it is for this node and came
    /// through the relay the plan names for its sender.
    func relay(to: NodeID, from: NodeID, kind: UInt16, correlation: UInt64, body: [UInt8], arrivedFrom l: Link,
               into events: inout [ClusterEvent]) {
        if to != me {
            guard from == l.peer, plan.relay(from: from, to: to) == me, let next = links[to], case .up = next.state else { l.dropped += 1; return }
            if enqueue(next, .relay(to: to, from: from, kind: kind, correlation: correlation, body: body), correlation: 0) { forwarded += 1 }
            return
        }
        guard let r = relayed[from], r.via == l.peer, let inner = try? PeerMessage.decode(kind: kind, body: body) else { l.dropped += 1; return }
        r.received += 1
        if case .hello(let inc) = inner {
            // Unlike a direct link, a relayed pair may come back in the same
            // life: its silence was the relay's (both sides declared each
            // other dead and start afresh).
            r.lastHelloAt = monotonicNanos()
            if r.state == .up(inc) { return }
            if case .up = r.state { events.append(.peerDown(from, why: "restarted (new incarnation)")) }
            r.seen = inc
            r.state = .up(inc)
            if handles[from] == nil { handles[from] = nextHandle; nextHandle += 1 }
            logger.info("relayed peer up", metadata: ["peer": "\(from)", "via": "\(r.via)"])
            events.append(.peerUp(from, PeerInfo(incarnation: inc, region: handles[from]!, regionSize: nil)))
            return
        }
        guard case .up = r.state else { r.dropped += 1; return }
        events.append(.message(from: from, correlation: correlation, inner))
    }

    /// A hello counts only from the life the peer's heartbeat shows.
    /// A hello that came before its heartbeat line showed that life waits
    /// (`pendingHello`) and is taken on the tick that sees the line.
    func hello(_ l: Link, _ inc: UInt64, into events: inout [ClusterEvent]) {
        let line = l.inBlock.flatMap { ib in l.inMemory.flatMap { Heartbeat.read(at: ib.heartbeat, in: $0) } }
        let verdict = l.watch.hello(inc, line: line.map { ($0.incarnation, $0.beat) })
        guard case .accept(let newLife, let wasUp) = verdict, let hb = line else {
            if verdict == .refused { l.dropped += 1 }
            return
        }
        if newLife {
            // A new life said hello before a tick saw its heartbeat: the
            // inbound ring is current (the hello came through it); the
            // outbound ring and the peer's memory are mapped afresh.
            if wasUp { events.append(.peerDown(l.peer, why: "restarted (new incarnation)")) }
            let consumer = l.consumer, inBlock = l.inBlock, inMemory = l.inMemory
            let inHost = plan.site(from: l.peer, to: me)?.host
            let keep = inHost.flatMap { $0 == me ? nil : peerRegions[$0] }
            detach(l)
            if let h = inHost, h != me, let r = keep { peerRegions[h] = r; regionInodes[h] = Self.inode(r.path) }
            guard let (ob, om) = block(me, l.peer), var p = try? RingProducer(memory: om, layout: ob.ring) else {
                l.state = .waiting
                l.seen = inc
                return
            }
            p.reset()
            l.producer = p
            l.outBlock = ob
            l.outMemory = om
            l.consumer = consumer
            l.inBlock = inBlock
            l.inMemory = inMemory
            l.queue = [Queued(kind: PeerMessage.Kind.hello.rawValue, correlation: 0, body: PeerMessage.hello(incarnation: incarnation).encodeBody())]
            // Our heartbeat in the new block first, so our hello is believed.
            if let load = lastLoad { load.publish(at: ob.heartbeat, in: om) }
        }
        l.watch.up(inc, beat: hb.beat, now: monotonicNanos())
        logger.info("peer up", metadata: ["peer": "\(l.peer)", "incarnation": "\(inc)"])
        if config.node(me)?.reach[l.peer] != nil { _ = memory(of: l.peer) }
        let mapped = peerRegions[l.peer]
        if handles[l.peer] == nil { handles[l.peer] = nextHandle; nextHandle += 1 }
        events.append(.peerUp(l.peer, PeerInfo(incarnation: inc, region: handles[l.peer]!, regionSize: mapped?.size)))
    }
}
