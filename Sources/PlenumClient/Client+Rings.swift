#if canImport(Glibc)
import Glibc
#endif
import CPlenumShim
import PlenumMemory
import PlenumRing
import PlenumWire

/// The client's shared-memory rings to its store (SPEC §9.6): opening them,
/// posting requests (in pieces when long), ringing the store's doorbell,
/// and waiting for replies — spinning, yielding, then sleeping until woken.
extension PlenumClient {
    /// Opens the shared-memory request/reply rings (SPEC §9.6); from then on
    /// every request but the few answered with descriptors bypasses the
    /// socket. `PlenumClient.init` calls it unless asked not to.
    public func useRings() throws(ClientError) {
        guard requests == nil else { return }
        let pair = try socketCall(Wire.encodeOpenRings) { incoming, rid -> Wire.RingPair? in
            if case .ringsOpened(rid, let p) = incoming { return p } else { return nil }
        }
        guard !receivedFDs.isEmpty else { throw .unexpected("ring pair without its descriptor") }
        let ringFD = receivedFDs.removeFirst()
        defer { close(ringFD) }
        var st = stat()
        guard fstat(ringFD, &st) == 0, st.st_size > 0 else { throw .unexpected("ring file: fstat failed") }
        let ringMapping: Mapping
        do throws(SystemCallError) { ringMapping = try Mapping(fd: ringFD, size: Int(st.st_size), subject: "ring file") } catch {
            throw .connect(error)
        }
        guard let line = try? LineSize(memory.lineSize) else { throw .unexpected("line size \(memory.lineSize)") }
        // Flush rule of the ring file: none (SPEC §9.6 "Cache domain"): a
        // memfd is mapped only on this node, in one cache domain; every
        // fence of the §5 protocol is kept.
        let m = ringMapping.memory(lineSize: line, flushes: false)
        do {
            let req = try Ring.describe(at: pair.requests, length: pair.length, in: m).layout
            let rep = try Ring.describe(at: pair.replies, length: pair.length, in: m).layout
            requests = try RingProducer(memory: m, layout: req)
            replies = RingConsumer(memory: m, layout: rep, ackBatch: 8)
        } catch { throw .unexpected("ring setup: \(error)") }
        guard pair.doorbell >= 0, pair.doorbell + 16 <= m.size else { throw .unexpected("doorbell and wake word outside the ring file") }
        doorbell = pair.doorbell
        sleepWord = m.size - line.bytes
        guard sleepWord >= pair.replies + pair.length, sleepWord > doorbell else { throw .unexpected("no room for the sleeping word in the ring file") }
        ringMemory = m
    }

    /// Posts a request frame to the request ring, in pieces when it is
    /// longer than a slot (SPEC §9.6); false if it must go by the socket
    /// (no rings, or the ring refused its first piece).
    func post(_ frame: [UInt8], doorbell: Bool = true) throws(ClientError) -> Bool {
        guard requests != nil else { return false }
        var backoff = Backoff()
        var offset = 0
        while true {
            let reached: Int
            do { reached = try RingPieces.post(frame, from: offset, into: &requests!) } catch {
                guard offset == 0 else { throw .unexpected("request ring: \(error)") }
                return false
            }
            if reached == frame.count { break }
            if reached > offset { backoff = Backoff() }
            offset = reached
            // The ring is full: the store must be awake to drain it.
            try ringDoorbell()
            backoff.idle()
        }
        if doorbell { try ringDoorbell() }
        return true
    }

    /// Doorbell (SPEC §9.6): after a post, fence; read the store's
    /// sleeping word (invalidated first: the store writes it); if set, wake
    /// the store by the socket.
    func ringDoorbell() throws(ClientError) {
        guard let m = ringMemory else { return }
        m.fence(.full)
        m.invalidate(at: doorbell, count: 8)
        m.fence(.full)
        if m.load64(at: doorbell, ordering: .acquiring) != 0 { try send(Wire.wakeFrame) }
    }

    /// The next incoming frame: from the reply ring if one is ready, else the
    /// socket (polled without blocking while rings are in use). Between
    /// empty polls the client spins, then yields, then sleeps in poll(2) on
    /// the socket after telling the store so through its sleeping word
    /// (SPEC §9.6): a post to the reply ring then comes with a `wake`.
    func next(socketEvery: Int = 64) throws(ClientError) -> Wire.Incoming {
        guard replies != nil else { return try receiveFromSocket() }
        defer { if asleep { setAsleep(false) } }
        var backoff = Backoff(spins: Self.spins, yields: Self.yields)
        var idle = 0, rounds = 0
        while true {
            // Polled in place: a copy of the consumer per poll costs more
            // than the poll.
            let got = replies!.poll { self.assembler.add($0) }
            switch got {
            case .delivered(.complete(let frame)):
                do { return try Wire.decodeIncoming(frame) } catch { throw .protocolError(error) }
            case .delivered(.partial): idle = 0; continue
            case .delivered(.tooLong(let n)): throw .unexpected("reply ring: a frame of more than \(n - 1) bytes (at most \(Frame.maxBytes))")
            case .delivered(.badKind(let k)): throw .unexpected("reply ring: a message of kind \(k) (1 or 2, SPEC §9.6)")
            case .corrupt(let why): throw .unexpected("reply ring: \(why)")
            case .empty:
                rounds += 1
                if asleep || rounds % socketEvery == 0, let incoming = try receiveIfReady() {
                    if incoming == .wake { continue }   // from a store that still sends them
                    return incoming
                }
                if asleep {
                    // The ring was empty after the word was published (and
                    // after the wake word was read): wait for the store's
                    // futex wake, or a frame on the socket when the request
                    // went that way. The timeout only bounds the damage of a
                    // lost wake.
                    if socketEvery == 1 {
                        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                        if Glibc.poll(&p, 1, sleepPollMs) > 0, let incoming = try receiveIfReady() {
                            if incoming == .wake { continue }
                            return incoming
                        }
                    } else if let m = ringMemory {
                        let r = m.read(at: doorbell + 8, count: 4) { plenum_futex_wait($0.baseAddress!, UInt32(truncatingIfNeeded: wakeSeen), Int64(sleepPollMs) * 1_000_000) }
                        if r == 0 || r == EAGAIN { wakes += 1 }
                        wakeSeen = m.load64(at: doorbell + 8, ordering: .acquiring)
                    }
                    continue
                }
                idle += 1
                if idle > Self.spins + Self.yields {
                    // Publish the word, then poll the ring once more before sleeping.
                    setAsleep(true)
                    continue
                }
                backoff.idle()
            }
        }
    }

    /// Spins and yields before a client sleeps waiting for a reply: a few
    /// PAUSE rounds only (a PAUSE spinner keeps the CPU from the store it
    /// waits for when the host has fewer CPUs than busy processes: 200
    /// rounds made a 4-node cluster's lookups twice as slow, issue 22),
    /// then 100 yields (tens of µs), then a futex sleep the store's post
    /// ends (SPEC §9.6): with 64 lookups in flight on a 4-node cluster,
    /// 2000 yields halved the throughput; the futex wake costs a few µs.
    /// PLENUM_CLIENT_SPINS / PLENUM_CLIENT_YIELDS override them (experiments).
    static let spins = Int(envNumber("PLENUM_CLIENT_SPINS") ?? 50)
    static let yields = Int(envNumber("PLENUM_CLIENT_YIELDS") ?? 100)

    /// Publishes this client's sleeping word (SPEC §9.6 "The client's
    /// sleeping word"): store (releasing) — a fresh sleep number, or 0;
    /// fence(.full); flush; fence(.full), so that the ring poll that follows
    /// is ordered after it.
    func setAsleep(_ on: Bool) {
        guard let m = ringMemory else { return }
        if on { sleeps &+= 1; if sleeps == 0 { sleeps = 1 } }
        asleep = on
        m.store64(on ? sleeps : 0, at: sleepWord, ordering: .releasing)
        m.fence(.full)
        m.flush(at: sleepWord, count: 8)
        m.fence(.full)
        // The wake word as it stood before the last poll: a wake after this
        // read changes it, and the futex wait then returns at once.
        if on { wakeSeen = m.load64(at: doorbell + 8, ordering: .acquiring) }
    }
}
