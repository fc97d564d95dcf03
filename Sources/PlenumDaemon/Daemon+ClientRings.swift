#if canImport(Glibc)
import Glibc
#endif
import CPlenumShim
import CURing
import Logging
import PlenumMemory
import PlenumRegion
import PlenumRing
import PlenumStore
import PlenumWire

/// Shared-memory request/reply rings between clients and this store (SPEC §9.6).
extension StoreDaemon {
    /// The doorbell word of every ring client (daemon-owned line, SPEC
    /// §9.6): store; fence(.full) so the following ring polls are ordered
    /// after it; flush; fence.
    func setSleeping(_ sleeping: Bool) {
        for e in endpoints.values {
            e.memory.store64(sleeping ? 1 : 0, at: e.doorbell, ordering: .releasing)
            e.memory.fence(.full)
            e.memory.flush(at: e.doorbell, count: 8)
        }
        if !endpoints.isEmpty { region.memory().fence(.store) }
    }

    /// Serves every ring client's queued requests; returns how many.
    func pollRings() -> Int {
        var handled = 0
        for (id, e) in endpoints {
            guard let c = connections[id] else { continue }
            flushPending(e, of: c)
            var budget = 32
            while budget > 0, !c.closing {
                budget -= 1
                let frame: [UInt8]?
                switch e.requests.poll({ Array($0.payload) }) {
                case .delivered(let f): frame = f
                case .corrupt(let why):
                    warnings.warning(logger, key: "request-ring-\(id)", "client \(id) request ring: \(why)", now: monotonicNanos())
                    continue
                case .empty: frame = nil
                }
                guard let frame else { break }
                handled += 1
                handle(frame: frame, from: c)
            }
        }
        return handled
    }
    /// Formats a fresh ring pair for client c in a memory file of its own
    /// and passes its descriptor (SPEC §9.6). From then on replies that fit
    /// a slot travel by ring.
    ///
    /// ```
    ///   memfd:  0 doorbell line (store writes) │ L requests ring │ L+R replies ring │ (to 4 KiB)
    /// ```
    func openRings(for c: Connection, requestId: UInt64) {
        guard endpoints[c.id] == nil, endpoints.count < Self.maxRingClients else {
            sendSocket(c, Wire.error(.outOfMemory, endpoints[c.id] == nil ? "no free ring pair (at most \(Self.maxRingClients) ring clients); keep using the socket" : "this client has its rings already", requestId: requestId))
            return
        }
        let line = region.lineSize.bytes
        let size = (line + 2 * ringBytes + 4095) / 4096 * 4096
        let fd = plenum_memfd("plenum-rings-\(c.id)", size)
        guard fd >= 0, let mapping = try? Mapping(fd: fd, size: size, subject: "ring file") else {
            if fd >= 0 { close(fd) }
            sendSocket(c, Wire.error(.outOfMemory, "no memory for a ring file (errno \(errno)); keep using the socket", requestId: requestId))
            return
        }
        let m = mapping.memory(lineSize: region.lineSize)
        let req = try! RingLayout(base: line, lineSize: line, slotCount: Self.ringSlots, slotSize: Self.ringSlotSize)
        let rep = try! RingLayout(base: line + ringBytes, lineSize: line, slotCount: Self.ringSlots, slotSize: Self.ringSlotSize)
        Ring.format(req, producer: UInt32(c.id & 0xFFFF_FFFF), consumer: 0, epoch: 1, in: m)
        Ring.format(rep, producer: 0, consumer: UInt32(c.id & 0xFFFF_FFFF), epoch: 1, in: m)
        guard let producer = try? RingProducer(memory: m, layout: rep) else {
            close(fd)
            sendSocket(c, Wire.error(.malformedFrame, "the reply ring could not be attached; keep using the socket", requestId: requestId))
            return
        }
        endpoints[c.id] = RingEndpoint(memory: m, doorbell: 0, requests: RingConsumer(memory: m, layout: req, ackBatch: 8), replies: producer)
        sendSocket(c, Wire.encode(Wire.RingPair(requests: req.base, replies: rep.base, length: ringBytes, doorbell: 0), requestId: requestId),
                   descriptors: [fd])
        lastRingActivity = monotonicNanos()
    }

    /// Posts queued replies into a ring client's reply ring while it has
    /// room. A client that takes none of them for `maxReplyStallNanos` is
    /// not reading: it is disconnected (SPEC §9.6 "Limits").
    func flushPending(_ e: RingEndpoint, of c: Connection) {
        guard !e.pending.isEmpty else { return }
        var posted = 0
        while let frame = e.pending.first {
            let r: PostResult
            do { r = try frame.withUnsafeBytes { try e.replies.post(kind: 1, requestId: 0, payload: $0) } } catch {
                // The client corrupted its side of the reply ring (or wrote an
                // absurd control word): it cannot be served.
                e.pending.removeAll()
                drop(c, why: "corrupt reply ring: \(error)", misbehaving: true)
                return
            }
            guard case .posted = r else { break }
            e.pending.removeFirst()
            posted += 1
        }
        let now = monotonicNanos()
        if e.pending.isEmpty || posted > 0 { e.stalledSince = e.pending.isEmpty ? nil : now; return }
        guard let since = e.stalledSince else { e.stalledSince = now; return }
        if now &- since > options.replyStallNanos {
            e.pending.removeAll()
            drop(c, why: "not reading its reply ring (no reply taken for \(options.replyStallNanos / 1_000_000) ms)", misbehaving: true)
        }
    }

    /// Replies and notifications: by the client's reply ring when it has
    /// one and the frame fits a slot (in order behind anything pending),
    /// else by the socket.
    func enqueue(_ c: Connection, _ frame: [UInt8]) {
        if let e = endpoints[c.id], frame.count <= Self.ringSlotSize - RingLayout.slotHeaderBytes {
            e.pending.append(frame)
            flushPending(e, of: c)
            if e.pending.count > Self.maxPendingReplies { drop(c, why: "not reading its reply ring (\(e.pending.count) replies waiting)", misbehaving: true) }
            return
        }
        sendSocket(c, frame)
    }

}
