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

/// The Unix socket side of the loop: io_uring submissions and completions,
/// framing, sends and closes (SPEC §9.4).
extension StoreDaemon {
    // MARK: submissions

    func sqe() -> UnsafeMutablePointer<io_uring_sqe> {
        if let s = io_uring_get_sqe(&ring) { return s }
        io_uring_submit(&ring)
        return io_uring_get_sqe(&ring)!
    }

    static func data(_ t: Tag, _ client: UInt64 = 0) -> UInt64 { t.rawValue << 56 | client }

    func armAccept() {
        let s = sqe()
        io_uring_prep_accept(s, listenFD, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
        io_uring_sqe_set_data64(s, Self.data(.accept))
    }

    func armSignal() {
        let s = sqe()
        io_uring_prep_read(s, signalFD, signalInfo, 128, 0)
        io_uring_sqe_set_data64(s, Self.data(.signal))
    }

    func armRecv(_ c: Connection) {
        guard !c.recvArmed, !c.closing else { return }
        c.recvArmed = true
        let s = sqe()
        io_uring_prep_recv(s, c.fd, c.buffer, 65536, 0)
        io_uring_sqe_set_data64(s, Self.data(.recv, c.id))
    }

    func armSend(_ c: Connection) {
        guard c.sending == nil, c.sendingMessage == nil, !c.outbox.isEmpty else { return }
        if let fds = c.outboxFDs[0], !fds.isEmpty {
            // A frame with descriptors goes alone, by sendmsg (SCM_RIGHTS).
            let frame = c.outbox.removeFirst()
            c.outboxBytes -= frame.count
            c.outboxFDs.removeFirst()
            guard let msg = frame.withUnsafeBytes({ b in fds.withUnsafeBufferPointer { plenum_fdmsg_create(b.baseAddress, b.count, $0.baseAddress, Int32(fds.count)) } }) else {
                for f in fds { close(f) }
                drop(c, why: "out of memory for a descriptor message")
                return
            }
            c.sendingMessage = (msg, frame, fds)
            let s = sqe()
            io_uring_prep_sendmsg(s, c.fd, msg.assumingMemoryBound(to: msghdr.self), UInt32(MSG_NOSIGNAL))
            io_uring_sqe_set_data64(s, Self.data(.send, c.id))
            return
        }
        // A subscriber's notifications go one per send: a small send on a
        // Unix socket is all or nothing, so a reader that takes one length
        // word then one recv of that length (as Plasma's clients may) never
        // sees half a message (SPEC §11.5).
        let n = c.notifyOnly ? 1 : c.outboxFDs.firstIndex { $0 != nil } ?? c.outbox.count
        var total = 0
        for f in c.outbox[0..<n] { total += f.count }
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: total, alignment: 8)
        var at = 0
        for f in c.outbox[0..<n] { f.withUnsafeBytes { buf.baseAddress!.advanced(by: at).copyMemory(from: $0.baseAddress!, byteCount: f.count) }; at += f.count }
        c.outbox.removeFirst(n)
        c.outboxBytes -= total
        c.outboxFDs.removeFirst(n)
        c.sending = buf
        c.sent = 0
        submitSend(c)
    }

    func submitSend(_ c: Connection) {
        guard let buf = c.sending else { return }
        let s = sqe()
        io_uring_prep_send(s, c.fd, buf.baseAddress! + c.sent, buf.count - c.sent, Int32(MSG_NOSIGNAL))
        io_uring_sqe_set_data64(s, Self.data(.send, c.id))
    }

    /// Wakes the loop after `retryNanos` to retry posts that found a ring full.
    func armRetry() {
        guard !retryArmed else { return }
        retryArmed = true
        armTimeout(retrySpec, Self.retryNanos, .retry)
    }

    /// Bells off (SPEC §10.3 "No bells"): wakes a sleeping loop after
    /// `nanos` to poll the peer rings, since no peer can ring.
    func armIdlePoll(_ nanos: UInt64) {
        guard !idlePollArmed else { return }
        idlePollArmed = true
        armTimeout(idlePollSpec, nanos, .idlePoll)
    }

    /// One io_uring timeout of `nanos`, completing with `tag`.
    func armTimeout(_ spec: UnsafeMutablePointer<__kernel_timespec>, _ nanos: UInt64, _ tag: Tag) {
        spec.pointee.tv_sec = Int64(nanos / 1_000_000_000)
        spec.pointee.tv_nsec = Int64(nanos % 1_000_000_000)
        let s = sqe()
        io_uring_prep_timeout(s, spec, 0, 0)
        io_uring_sqe_set_data64(s, Self.data(tag))
    }

    func armTimer() {
        guard let deadline = core.earliestDeadline() else { return }
        if let armed = timerArmedFor, armed <= deadline { return }
        let now = monotonicNanos()
        let wait = deadline > now ? deadline - now : 0
        timerSpec.pointee.tv_sec = Int64(wait / 1_000_000_000)
        timerSpec.pointee.tv_nsec = Int64(wait % 1_000_000_000)
        let s = sqe()
        io_uring_prep_timeout(s, timerSpec, 0, 0)
        io_uring_sqe_set_data64(s, Self.data(.timer))
        timerArmedFor = deadline
        io_uring_submit(&ring)
    }

    // MARK: completions

    func complete(tag: Tag?, client: UInt64, result: Int32) {
        switch tag {
        case .accept:
            if result >= 0 {
                accepted(fd: result)
                armAccept()
            } else {
                acceptFailed(errno: -result, socket: "Plenum", retry: .acceptRetry)
            }
        case .acceptRetry:
            armAccept()
        case .plasmaAccept:
            if result >= 0 {
                plasmaAccepted(fd: result)
                armPlasmaAccept()
            } else {
                acceptFailed(errno: -result, socket: "Plasma", retry: .plasmaAcceptRetry)
            }
        case .plasmaAcceptRetry:
            armPlasmaAccept()
        case .plasmaRead:
            if retired.removeValue(forKey: client) != nil { return }
            guard let c = connections[client] else { return }
            plasmaReadable(c, result: result)
        case .retry:
            retryArmed = false
        case .idlePoll:
            idlePollArmed = false
            idlePolls += 1
        case .heartbeat:
            heartbeatArmed = false
            heartbeat()
        case .metricsFile:
            writeMetricsFile()
        case .bell:
            // A peer posted while this store slept: poll now.
            lastRingActivity = monotonicNanos()
            armBell()
        case .signal:
            let number = result >= 4 ? signalInfo.load(as: UInt32.self) : 0
            logger.info("signal \(number) received: shutting down")
            running = false
        case .timer:
            timerArmedFor = nil
            apply(.local(.tick), now: monotonicNanos())
        case .recv:
            if retired.removeValue(forKey: client) != nil { return }
            guard let c = connections[client] else { return }
            c.recvArmed = false
            if result <= 0 { drop(c, why: result == 0 ? "closed" : "recv errno \(-result)"); return }
            c.input.append(contentsOf: UnsafeRawBufferPointer(start: c.buffer, count: Int(result)).bindMemory(to: UInt8.self))
            process(c)
            armRecv(c)
        case .send:
            guard let c = connections[client] else { return }
            if let (msg, frame, fds) = c.sendingMessage {
                c.sendingMessage = nil
                plenum_fdmsg_free(msg)
                for f in fds { close(f) }
                if result < 0 { drop(c, why: "sendmsg errno \(-result)"); return }
                if Int(result) < frame.count {
                    // The descriptors went with the first byte; the rest is plain.
                    c.outbox.insert(Array(frame[Int(result)...]), at: 0)
                    c.outboxBytes += frame.count - Int(result)
                    c.outboxFDs.insert(nil, at: 0)
                }
                if c.dropped || (c.closing && c.outbox.isEmpty) { finishClose(c); return }
                armSend(c)
                return
            }
            if result < 0 {
                c.sending?.deallocate()
                c.sending = nil
                drop(c, why: "send errno \(-result)")
                return
            }
            c.sent += Int(result)
            if let buf = c.sending, c.sent < buf.count { submitSend(c); return }
            c.sending?.deallocate()
            c.sending = nil
            if c.dropped || (c.closing && c.outbox.isEmpty) { finishClose(c); return }
            armSend(c)
        case nil:
            break
        }
    }

    /// Out of descriptors (EMFILE) and the like: the accept is re-armed by
    /// `retry` in 10 ms instead of spinning on a listen socket that stays readable.
    func acceptFailed(errno: Int32, socket: String, retry: Tag) {
        warnings.warning(logger, key: "accept-\(socket)", "accept failed on the \(socket) socket: errno \(errno); retrying in 10 ms", now: monotonicNanos())
        acceptRetry.pointee.tv_sec = 0
        acceptRetry.pointee.tv_nsec = 10_000_000
        let s = sqe()
        io_uring_prep_timeout(s, acceptRetry, 0, 0)
        io_uring_sqe_set_data64(s, Self.data(retry))
    }

    func accepted(fd: Int32) {
        let id = nextClient
        nextClient += 1
        let hello = Wire.encode(Hello(regionSize: region.size, lineSize: region.lineSize.bytes, clientId: id))
        // Read-only: write access is a request of its own (SPEC §9.7).
        let regionFD = openRegion(O_RDONLY)
        defer { if regionFD >= 0 { close(regionFD) } }
        let sent = hello.withUnsafeBytes { plenum_send_with_fd(fd, $0.baseAddress, $0.count, regionFD) }
        guard regionFD >= 0, sent == hello.count else {
            logger.warning("could not greet client \(id)")
            close(fd)
            return
        }
        let c = Connection(id: id, fd: fd)
        c.mayWrite = Self.peerUID(fd).map { $0 == geteuid() || options.writerUIDs.contains($0) } ?? false
        connections[id] = c
        apply(.local(.connected(id)), now: monotonicNanos())
        armRecv(c)
        logger.info("client connected", metadata: ["client": "\(id)"])
    }

    /// Parses every whole frame in the connection's input.
    func process(_ c: Connection) {
        lastSocketRequest = monotonicNanos()
        var start = 0
        while !c.closing {
            let length: Int?
            do { length = try Frame.complete(c.input, from: start) } catch {
                // The length cannot be trusted: answer, then close this client.
                sendSocket(c, Wire.error(.frameTooLarge, error.description, requestId: 0))
                closeAfterSend(c)
                break
            }
            guard let length else { break }
            let frame = Array(c.input[start..<(start + length)])
            start += length
            drainRing(of: c)
            handle(frame: frame, from: c)
        }
        if start > 0 { c.input.removeFirst(min(start, c.input.count)) }
    }

    /// A frame with descriptors attached (they are closed once sent).
    func sendSocket(_ c: Connection, _ frame: [UInt8], descriptors: [Int32]) {
        guard !c.dropped else { for f in descriptors { close(f) }; return }
        c.outbox.append(frame)
        c.outboxBytes += frame.count
        // No descriptors is a plain frame: an empty list would make armSend
        // send nothing, forever (found in review).
        c.outboxFDs.append(descriptors.isEmpty ? nil : descriptors)
        armSend(c)
    }

    func sendSocket(_ c: Connection, _ frame: [UInt8]) {
        guard !c.dropped else { return }
        var frame = frame
        if frame.count > Frame.maxBytes, c.plasma == nil {
            // A reply larger than any frame (a list of a huge store): say so.
            let rid = frame[8..<16].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) }
            frame = Wire.error(.frameTooLarge, "reply of \(frame.count) bytes exceeds the \(Frame.maxBytes)-byte frame limit (too many objects to list in one reply)", requestId: rid)
        }
        // A client that sends requests but does not read the replies must
        // not grow this daemon without bound (SPEC §9.4 "Limits").
        guard c.outbox.count < Self.maxQueuedReplies, c.outboxBytes + frame.count <= Self.maxQueuedReplyBytes else {
            drop(c, why: "not reading its replies (\(c.outbox.count) replies, \(c.outboxBytes) bytes queued; limits \(Self.maxQueuedReplies), \(Self.maxQueuedReplyBytes))", misbehaving: true)
            return
        }
        c.outbox.append(frame)
        c.outboxBytes += frame.count
        c.outboxFDs.append(nil)
        armSend(c)
    }

    /// Sends what is queued (the error that explains the close), then closes.
    func closeAfterSend(_ c: Connection) {
        c.closing = true
        if c.sending == nil, c.sendingMessage == nil { if c.outbox.isEmpty { finishClose(c) } else { armSend(c) } }
    }

    /// The peer is gone: the core aborts its unsealed objects and drops its references.
    /// A client that broke a limit or corrupted its rings is `misbehaving`:
    /// logged as a warning (once per client), not as routine.
    func drop(_ c: Connection, why: String, misbehaving: Bool = false) {
        guard !c.dropped else { return }
        if misbehaving {
            logger.warning("client disconnected", metadata: ["client": "\(c.id)", "why": "\(why)"])
        } else {
            logger.info("client disconnected", metadata: ["client": "\(c.id)", "why": "\(why)"])
        }
        c.dropped = true
        c.closing = true
        for case let fds? in c.outboxFDs { for f in fds { close(f) } }
        c.outbox.removeAll()
        c.outboxFDs.removeAll()
        c.outboxBytes = 0
        if c.sending == nil, c.sendingMessage == nil { finishClose(c) } else {
            // A send may wait forever for a client that does not read:
            // shutting the socket down completes it (with an error).
            shutdownSocket(c.fd)
        }
    }

    func finishClose(_ c: Connection) {
        guard connections.removeValue(forKey: c.id) != nil else { return }
        metrics.forget(client: c.id)
        shutdownSocket(c.fd)   // completes an outstanding recv
        close(c.fd)
        if c.recvArmed { retired[c.id] = c }
        if c.notifyOnly {
            if let o = c.owner, let owner = connections[o], owner.plasma?.subscriber == c.id { owner.plasma?.subscriber = nil }
            return
        }
        if let sub = c.plasma?.subscriber, let s = connections[sub] { drop(s, why: "its Plasma client left") }
        endpoints[c.id] = nil   // unmaps its ring file
        c.rings = nil
        apply(.local(.disconnected(c.id)), now: monotonicNanos())
    }

    func shutdownSocket(_ fd: Int32) { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
}
