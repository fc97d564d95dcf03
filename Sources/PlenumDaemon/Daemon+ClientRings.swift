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

    /// Serves every ring client's queued requests and posts what waits for
    /// room in its reply ring; returns how many ring messages moved (pieces
    /// of a long frame count one each, so the loop keeps polling while a
    /// long reply streams out).
    func pollRings() -> Int {
        var moved = 0
        for (id, e) in endpoints {
            guard let c = connections[id] else { continue }
            moved += flushPending(e, of: c)
            moved += serveRing(e, of: c, budget: 32)
        }
        return moved
    }

    /// Takes up to `budget` messages from c's request ring, handling every
    /// frame they complete (SPEC §9.6: a frame longer than a slot comes in
    /// pieces). Returns how many messages it took.
    @discardableResult
    func serveRing(_ e: RingEndpoint, of c: Connection, budget: Int) -> Int {
        var taken = 0
        while taken < budget, !c.closing {
            let outcome: PieceAssembler.Outcome
            switch e.requests.poll({ e.assembler.add($0) }) {
            case .delivered(let o): outcome = o
            case .corrupt(let why):
                warnings.warning(logger, key: "request-ring-\(c.id)", "client \(c.id) request ring: \(why)", now: monotonicNanos())
                continue
            case .empty: return taken
            }
            taken += 1
            switch outcome {
            case .complete(let frame): handle(frame: frame, from: c)
            case .partial: continue
            case .tooLong(let n):
                drop(c, why: "sent a frame of more than \(n - 1) bytes through its request ring (at most \(Frame.maxBytes))", misbehaving: true)
            case .badKind(let k):
                drop(c, why: "posted a message of kind \(k) to its request ring (1 or 2, SPEC §9.6)", misbehaving: true)
            }
        }
        return taken
    }

    /// Before a socket frame of a ring client is handled, everything the
    /// client posted to its request ring before sending it is handled
    /// (SPEC §9.6 "Order"): the client flushed those posts before its send.
    /// They are at most a ring's worth of messages (the client cannot post
    /// more before they are taken), so that bounds the drain: a client that
    /// keeps posting cannot hold the loop here.
    func drainRing(of c: Connection) {
        guard let e = endpoints[c.id] else { return }
        serveRing(e, of: c, budget: Self.ringSlots)
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
        // Room for the client's sleeping word in the last line (SPEC §9.6).
        let size = (2 * line + 2 * ringBytes + 4095) / 4096 * 4096
        let fd = plenum_memfd("plenum-rings-\(c.id)", size)
        guard fd >= 0, let mapping = try? Mapping(fd: fd, size: size, subject: "ring file") else {
            if fd >= 0 { close(fd) }
            sendSocket(c, Wire.error(.outOfMemory, "no memory for a ring file (errno \(errno)); keep using the socket", requestId: requestId))
            return
        }
        // Flush rule of the ring file: none (SPEC §9.6 "Cache domain"): a
        // memfd is mapped only by processes of this node, which share its
        // cache domain; every fence of the §5 protocol is kept.
        let m = mapping.memory(lineSize: region.lineSize, flushes: false)
        let req = try! RingLayout(base: line, lineSize: line, slotCount: Self.ringSlots, slotSize: Self.ringSlotSize)
        let rep = try! RingLayout(base: line + ringBytes, lineSize: line, slotCount: Self.ringSlots, slotSize: Self.ringSlotSize)
        Ring.format(req, producer: UInt32(c.id & 0xFFFF_FFFF), consumer: 0, epoch: 1, in: m)
        Ring.format(rep, producer: 0, consumer: UInt32(c.id & 0xFFFF_FFFF), epoch: 1, in: m)
        guard let producer = try? RingProducer(memory: m, layout: rep) else {
            close(fd)
            sendSocket(c, Wire.error(.malformedFrame, "the reply ring could not be attached; keep using the socket", requestId: requestId))
            return
        }
        let e = RingEndpoint(memory: m, doorbell: 0, sleepWord: size - line, requests: RingConsumer(memory: m, layout: req, ackBatch: 8), replies: producer)
        endpoints[c.id] = e
        c.rings = e
        sendSocket(c, Wire.encode(Wire.RingPair(requests: req.base, replies: rep.base, length: ringBytes, doorbell: 0), requestId: requestId),
                   descriptors: [fd])
        lastRingActivity = monotonicNanos()
    }

    /// Posts queued replies into a ring client's reply ring while it has
    /// room, a long frame piece by piece (SPEC §9.6); returns how many
    /// pieces it posted. A client that takes none of them for
    /// `replyStallNanos` is not reading: it is disconnected (SPEC §9.6
    /// "Limits").
    @discardableResult
    func flushPending(_ e: RingEndpoint, of c: Connection) -> Int {
        guard !e.pending.isEmpty else { return 0 }
        var posted = 0
        while let frame = e.pending.first {
            guard let reached = post(frame, from: e.pendingOffset, to: e, of: c) else { return posted }
            let maxPiece = e.replies.layout.maxPayload
            posted += (reached - e.pendingOffset + maxPiece - 1) / maxPiece
            guard reached == frame.count else { e.pendingOffset = reached; break }
            e.pendingOffset = 0
            e.pendingBytes -= frame.count
            e.pending.removeFirst()
        }
        if posted > 0 { wakeIfSleeping(e, c) }
        let now = monotonicNanos()
        if e.pending.isEmpty || posted > 0 { e.stalledSince = e.pending.isEmpty ? nil : now; return posted }
        guard let since = e.stalledSince else { e.stalledSince = now; return 0 }
        if now &- since > options.replyStallNanos {
            e.pending.removeAll()
            e.pendingBytes = 0
            drop(c, why: "not reading its reply ring (no reply taken for \(options.replyStallNanos / 1_000_000) ms)", misbehaving: true)
        }
        return 0
    }

    /// `frame[from...]` into c's reply ring, piece by piece while it has
    /// room: the offset reached, or nil when the client corrupted its side
    /// of the ring (or wrote an absurd control word) and was dropped.
    func post(_ frame: [UInt8], from offset: Int, to e: RingEndpoint, of c: Connection) -> Int? {
        do { return try RingPieces.post(frame, from: offset, into: &e.replies) } catch {
            e.pending.removeAll()
            e.pendingBytes = 0
            drop(c, why: "corrupt reply ring: \(error)", misbehaving: true)
            return nil
        }
    }

    /// After posting to c's reply ring: if the client said it sleeps
    /// (SPEC §9.6 "The client's sleeping word") and this sleep was not
    /// woken yet, bump the wake word and FUTEX_WAKE it. The sleeping word is
    /// read after the post: fence(.full); invalidate (the client writes it);
    /// fence(.full); load (acquiring) — the mirror of the doorbell. The wake
    /// word (doorbell + 8, this store's line): store (releasing);
    /// fence(.full); then the futex syscall (one cache domain: no flush).
    func wakeIfSleeping(_ e: RingEndpoint, _ c: Connection) {
        e.memory.fence(.full)
        e.memory.invalidate(at: e.sleepWord, count: 8)
        e.memory.fence(.full)
        let word = e.memory.load64(at: e.sleepWord, ordering: .acquiring)
        guard word != 0, word != e.wokenSleep else { return }
        e.wokenSleep = word
        e.wakes &+= 1
        let at = e.doorbell + Self.wakeWordOffset
        e.memory.store64(e.wakes, at: at, ordering: .releasing)
        e.memory.fence(.full)
        _ = e.memory.read(at: at, count: 4) { plenum_futex_wake($0.baseAddress!, 1) }
        trace.record(.clientWake, kind: Frame.Kind.wake.rawValue, key: 0, client: c.id)
    }

    /// The wake word's place in the doorbell line (SPEC §9.6).
    static let wakeWordOffset = 8

    /// A small reply (`Frame.small`) written straight into c's reply ring
    /// when nothing waits ahead of it and the ring has room: no frame is
    /// allocated. False: not posted (no ring, replies queued, ring full or
    /// unusable); `enqueue` the frame instead, which handles each case.
    func postSmall(_ kind: Frame.Kind, _ byte: UInt8?, requestId rid: UInt64, to c: Connection) -> Bool {
        guard let e = c.rings, e.pending.isEmpty else { return false }
        let n = Frame.smallLength(byte: byte)
        guard case .posted? = try? e.replies.post(kind: RingPieces.last, requestId: 0, length: n, fill: {
            Frame.writeSmall(kind, requestId: rid, byte: byte, into: $0)
        }) else { return false }
        e.stalledSince = nil
        wakeIfSleeping(e, c)
        return true
    }

    /// Replies and notifications: by the client's reply ring when it has
    /// one (in order behind anything pending; a frame longer than a slot in
    /// pieces), else by the socket.
    func enqueue(_ c: Connection, _ frame: [UInt8]) {
        guard let e = c.rings else { return sendSocket(c, frame) }
        if e.pending.isEmpty {
            // Nothing waits ahead of it: posted now, queued only for what
            // finds the ring full (then waiting for room starts now).
            guard let reached = post(frame, from: 0, to: e, of: c) else { return }
            if reached > 0 { wakeIfSleeping(e, c) }
            if reached == frame.count { e.stalledSince = nil; return }
            e.pendingOffset = reached
            e.pending.append(frame)
            e.pendingBytes += frame.count
            e.stalledSince = monotonicNanos()
        } else {
            e.pending.append(frame)
            e.pendingBytes += frame.count
            flushPending(e, of: c)
        }
        if e.pending.count > Self.maxPendingReplies || e.pendingBytes > Self.maxQueuedReplyBytes {
            drop(c, why: "not reading its reply ring (\(e.pending.count) replies, \(e.pendingBytes) bytes waiting)", misbehaving: true)
        }
    }

}
