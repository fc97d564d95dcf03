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

/// `plenum store`: the I/O shell around `StoreCore` (SPEC.md §9.3).
///
/// One io_uring (liburing) event loop over a Unix stream socket: accept,
/// per-client recv and send, a signalfd for SIGINT/SIGTERM, and a timeout
/// for the earliest get deadline. The region's descriptor reaches each
/// client once, with SCM_RIGHTS, in the greeting. Object bytes never pass
/// through the socket.
///
/// ```
///   accept ─▶ hello+fd ─▶ recv ─▶ frames ─▶ StoreCore.handle ─▶ actions ─▶ send queue
///      ▲                    ▲                                       │
///      └── re-armed         └── re-armed after each completion      └─ one send in flight per client
/// ```
public final class StoreDaemon {
    public struct Options: Sendable {
        public var socketPath: String
        public var memory: Int
        public var regionPath: String?
        public var numaNode: Int?
        public var lineSize: LineSize = .default
        public init(socketPath: String, memory: Int) {
            self.socketPath = socketPath
            self.memory = memory
        }
    }

    final class Connection {
        let id: UInt64
        let fd: Int32
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 65536, alignment: 16)
        var input: [UInt8] = []
        var outbox: [[UInt8]] = []
        var sending: UnsafeMutableRawBufferPointer?
        var sent = 0
        var recvArmed = false
        /// Flush what is queued, then close (protocol error).
        var closing = false
        /// The peer is gone: close as soon as no send is in flight.
        var dropped = false
        init(id: UInt64, fd: Int32) { self.id = id; self.fd = fd }
        deinit { buffer.deallocate(); sending?.deallocate() }
    }

    enum Tag: UInt64 { case accept = 1, recv, send, signal, timer, acceptRetry }

    /// A client's pair of shared-memory rings (SPEC §9.6): requests in,
    /// replies and notifications out.
    final class RingEndpoint {
        let pair: Int
        var requests: RingConsumer<MappedMemory>
        var replies: RingProducer<MappedMemory>
        var pending: [[UInt8]] = []
        init(pair: Int, requests: RingConsumer<MappedMemory>, replies: RingProducer<MappedMemory>) {
            self.pair = pair
            self.requests = requests
            self.replies = replies
        }
    }

    static let ringSlots = 64
    static let ringSlotSize = 2048
    static let maxRingClients = 32
    /// A ring client whose replies pile up beyond this is not reading: dropped.
    static let maxPendingReplies = 4096
    /// How long the loop keeps polling rings after the last ring message
    /// before it sleeps in io_uring (and clients must ring the doorbell).
    static let spinNanos: UInt64 = 200_000

    public let options: Options
    public let region: Region
    let regionPath: String
    var core: StoreCore
    var ring = io_uring()
    var listenFD: Int32 = -1
    var signalFD: Int32 = -1
    var connections: [UInt64: Connection] = [:]
    /// Closed connections whose recv is still in the kernel: their buffer must
    /// outlive it, so they are freed when that completion arrives.
    var retired: [UInt64: Connection] = [:]
    var endpoints: [UInt64: RingEndpoint] = [:]
    var freePairs: [Int] = Array((0..<StoreDaemon.maxRingClients).reversed())
    /// Each reuse of a ring pair formats it with a higher epoch, so a stale
    /// peer of the previous owner fails the epoch checks (SPEC §5.6).
    var pairEpochs = [UInt64](repeating: 0, count: StoreDaemon.maxRingClients)
    var acceptRetry = UnsafeMutablePointer<__kernel_timespec>.allocate(capacity: 1)
    let ringArea: Int
    let ringBytes: Int
    let doorbell: Int
    var lastRingActivity: UInt64 = 0
    var nextClient: UInt64 = 1
    var timerSpec = UnsafeMutablePointer<__kernel_timespec>.allocate(capacity: 1)
    var timerArmedFor: UInt64?
    var signalInfo = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 8)
    var running = true
    let logger: Logger

    public init(_ options: Options, logger: Logger = Logger(label: "plenum.store")) throws {
        self.options = options
        self.logger = logger
        guard options.memory > 0 else { throw DaemonError.badOption("--memory must be positive") }
        let line = options.lineSize.bytes
        let heap = (options.memory + 4095) / 4096 * 4096
        let path = options.regionPath ?? "/dev/shm/plenum-store-\(getuid())-\(getpid()).region"
        regionPath = path
        let ringBytes = try RingLayout(base: 0, lineSize: line, slotCount: Self.ringSlots, slotSize: Self.ringSlotSize).totalBytes
        self.ringBytes = ringBytes
        let ringArea = (2 * ringBytes * Self.maxRingClients + 4095) / 4096 * 4096
        let size = RegionLayout.dataOffset(line: line) + heap + ringArea + 3 * 4096
        region = try Region.create(at: path, size: size, lineSize: options.lineSize, owner: 0,
                                   numaNode: options.numaNode, overwrite: options.regionPath != nil)
        let segment = try SegmentTable.append(.raw, name: "objects", length: heap, in: region.memory(), header: region.header)
        doorbell = try SegmentTable.append(.raw, name: "doorbell", length: line, in: region.memory(), header: region.header).offset
        self.ringArea = try SegmentTable.append(.raw, name: "client-rings", length: ringArea, in: region.memory(), header: region.header).offset
        core = StoreCore(config: .init(base: segment.offset, capacity: segment.length, lineSize: line))
    }

    deinit {
        timerSpec.deallocate()
        acceptRetry.deallocate()
        signalInfo.deallocate()
    }

    /// Serves until SIGINT or SIGTERM; then removes the socket and region.
    public func run() throws {
        defer { shutdown() }
        try listen()
        var mask = sigset_t()
        sigemptyset(&mask)
        sigaddset(&mask, SIGINT)
        sigaddset(&mask, SIGTERM)
        sigaddset(&mask, SIGPIPE)
        pthread_sigmask(SIG_BLOCK, &mask, nil)
        sigdelset(&mask, SIGPIPE)
        signalFD = signalfd(-1, &mask, Int32(SFD_CLOEXEC))
        guard signalFD >= 0 else { throw DaemonError.system(.last("signalfd")) }
        let rc = io_uring_queue_init(256, &ring, 0)
        guard rc == 0 else { throw DaemonError.system(SystemCallError("io_uring_queue_init", errno: -rc, hint: "the kernel must allow io_uring (/proc/sys/kernel/io_uring_disabled = 0)")) }
        defer { io_uring_queue_exit(&ring) }
        armAccept()
        armSignal()
        logger.info("serving", metadata: ["socket": "\(options.socketPath)", "region": "\(regionPath)", "capacity": "\(core.config.capacity)"])
        while running {
            if !endpoints.isEmpty {
                // Replies waiting for room in a reply ring keep the loop awake.
                if pollRings() > 0 || endpoints.values.contains(where: { !$0.pending.isEmpty }) { lastRingActivity = monotonicNanos() }
                if monotonicNanos() &- lastRingActivity < Self.spinNanos {
                    io_uring_submit(&ring)
                    drainCompletions()
                    armTimer()
                    CPU.relax()
                    continue
                }
                // Going to sleep: publish it, then look once more (a client
                // that posted before seeing the flag is served now).
                setSleeping(true)
                if pollRings() > 0 { setSleeping(false); lastRingActivity = monotonicNanos(); continue }
            }
            io_uring_submit_and_wait(&ring, 1)
            if !endpoints.isEmpty { setSleeping(false) }
            drainCompletions()
            armTimer()
        }
    }

    func drainCompletions() {
        var cqe: UnsafeMutablePointer<io_uring_cqe>?
        while io_uring_peek_cqe(&ring, &cqe) == 0, let c = cqe {
            let data = c.pointee.user_data, res = c.pointee.res
            io_uring_cqe_seen(&ring, c)
            complete(tag: Tag(rawValue: data >> 56), client: data & 0x00FF_FFFF_FFFF_FFFF, result: res)
        }
    }

    /// The doorbell word (daemon-owned line, SPEC §9.6): store; fence(.full)
    /// so the following ring polls are ordered after it; flush; fence.
    func setSleeping(_ sleeping: Bool) {
        let m = region.memory()
        m.store64(sleeping ? 1 : 0, at: doorbell, ordering: .releasing)
        m.fence(.full)
        m.flush(at: doorbell, count: 8)
        m.fence(.store)
    }

    /// Serves every ring client's queued requests; returns how many.
    func pollRings() -> Int {
        var handled = 0
        for (id, e) in endpoints {
            flushPending(e)
            var budget = 32
            while budget > 0, let c = connections[id] {
                budget -= 1
                let frame: [UInt8]?
                switch e.requests.poll({ Array($0.payload) }) {
                case .delivered(let f): frame = f
                case .corrupt(let why):
                    logger.warning("client \(id) request ring: \(why)")
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

    func listen() throws {
        unlink(options.socketPath)
        listenFD = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listenFD >= 0 else { throw DaemonError.system(.last("socket")) }
        let old = umask(0o177)  // socket file 0600
        let ok: Int32
        do { ok = try UnixSocket.withAddress(options.socketPath) { bind(listenFD, $0, $1) } } catch {
            umask(old)
            throw DaemonError.badOption(error.description)
        }
        umask(old)
        guard ok == 0 else { throw DaemonError.system(.last("bind", subject: options.socketPath, hint: "is another store using this socket path?")) }
        guard Glibc.listen(listenFD, 128) == 0 else { throw DaemonError.system(.last("listen")) }
    }

    func shutdown() {
        for c in connections.values { close(c.fd) }
        connections.removeAll()
        if listenFD >= 0 { close(listenFD); unlink(options.socketPath) }
        if signalFD >= 0 { close(signalFD) }
        unlink(regionPath)
        logger.info("stopped")
    }

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
        guard c.sending == nil, !c.outbox.isEmpty else { return }
        var total = 0
        for f in c.outbox { total += f.count }
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: total, alignment: 8)
        var at = 0
        for f in c.outbox { f.withUnsafeBytes { buf.baseAddress!.advanced(by: at).copyMemory(from: $0.baseAddress!, byteCount: f.count) }; at += f.count }
        c.outbox.removeAll(keepingCapacity: true)
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

    func armTimer() {
        guard let deadline = core.nextDeadline else { return }
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
                // Out of descriptors (EMFILE) and the like: retry in 10 ms
                // instead of spinning on a listen socket that stays readable.
                logger.warning("accept failed: errno \(-result); retrying in 10 ms")
                acceptRetry.pointee.tv_sec = 0
                acceptRetry.pointee.tv_nsec = 10_000_000
                let s = sqe()
                io_uring_prep_timeout(s, acceptRetry, 0, 0)
                io_uring_sqe_set_data64(s, Self.data(.acceptRetry))
            }
        case .acceptRetry:
            armAccept()
        case .signal:
            logger.info("signal received: shutting down")
            running = false
        case .timer:
            timerArmedFor = nil
            dispatch(core.handle(.tick, now: monotonicNanos()))
        case .recv:
            if retired.removeValue(forKey: client) != nil { return }
            guard let c = connections[client] else { return }
            c.recvArmed = false
            if result <= 0 { drop(c, why: result == 0 ? "closed" : "recv errno \(-result)"); return }
            c.input += UnsafeRawBufferPointer(start: c.buffer, count: Int(result))
            process(c)
            armRecv(c)
        case .send:
            guard let c = connections[client] else { return }
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

    func accepted(fd: Int32) {
        let id = nextClient
        nextClient += 1
        let hello = Wire.encode(Hello(regionSize: region.size, lineSize: region.lineSize.bytes, clientId: id))
        let regionFD = open(regionPath, O_RDWR | O_CLOEXEC)
        defer { if regionFD >= 0 { close(regionFD) } }
        let sent = hello.withUnsafeBytes { plenum_send_with_fd(fd, $0.baseAddress, $0.count, regionFD) }
        guard regionFD >= 0, sent == hello.count else {
            logger.warning("could not greet client \(id)")
            close(fd)
            return
        }
        let c = Connection(id: id, fd: fd)
        connections[id] = c
        dispatch(core.handle(.connected(id), now: monotonicNanos()))
        armRecv(c)
        logger.info("client connected", metadata: ["client": "\(id)"])
    }

    /// Parses every whole frame in the connection's input.
    func process(_ c: Connection) {
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
            handle(frame: frame, from: c)
        }
        if start > 0 { c.input.removeFirst(min(start, c.input.count)) }
    }

    /// Create-and-seal of a small object carried in the request: create
    /// through the core, write the bytes in place, publish them (fence; flush;
    /// fence), seal with their digest. Replies to the internal requests
    /// (request id 0) are consumed here; notifications and woken gets go out.
    func createAndSeal(_ o: Wire.InlineObject, client: UInt64) -> StoreError? {
        let memory = region.memory()
        var created: ObjectLocation?
        var failure: StoreError?
        for a in core.handle(.request(client, requestId: 0, .create(o.id, dataSize: o.data.count, metadataSize: o.metadata.count)), now: monotonicNanos()) {
            if case .reply(client, 0, let r) = a {
                if case .created(let l) = r { created = l } else if case .error(let e) = r { failure = e }
            } else { dispatch([a]) }
        }
        guard let l = created else { return failure }
        let total = o.data.count + o.metadata.count
        memory.write(at: l.offset, count: total) { b in
            o.data.withUnsafeBytes { if $0.count > 0 { UnsafeMutableRawBufferPointer(rebasing: b[0..<$0.count]).copyMemory(from: $0) } }
            o.metadata.withUnsafeBytes { if $0.count > 0 { UnsafeMutableRawBufferPointer(rebasing: b[o.data.count...]).copyMemory(from: $0) } }
        }
        memory.fence(.store)
        memory.flush(at: l.offset, count: total)
        memory.fence(.store)
        let digest = memory.read(at: l.offset, count: total) { UInt64(CRC32C.checksum($0)) }
        for a in core.handle(.request(client, requestId: 0, .seal(o.id, digest: digest)), now: monotonicNanos()) {
            if case .reply(client, 0, let r) = a {
                if case .error(let e) = r { failure = e }
            } else { dispatch([a]) }
        }
        return failure
    }

    /// One request frame, from the socket or the client's request ring.
    func handle(frame: [UInt8], from c: Connection) {
        do throws(WireError) {
            let decoded = try Wire.decode(frame)
            if decoded.requestId == 0, decoded.request != .wake {
                // 0 is reserved: notifications, and the daemon's own internal requests.
                throw WireError.badValue("request id 0 is reserved; number requests from 1")
            }
            switch decoded {
            case (let rid, .core(let request)):
                dispatch(core.handle(.request(c.id, requestId: rid, request), now: monotonicNanos()))
            case (let rid, .createAndSeal(let objects)):
                enqueue(c, Wire.encode(.createdAndSealed(objects.map { createAndSeal($0, client: c.id) }), requestId: rid))
            case (let rid, .openRings):
                openRings(for: c, requestId: rid)
            case (_, .wake):
                lastRingActivity = monotonicNanos()
            case (let rid, .cluster), (let rid, .regions), (let rid, .clusterStatus):
                enqueue(c, Wire.error(.unknownType, "not a cluster member", requestId: rid))
            }
        } catch {
            let rid = frame.count >= 16 ? frame[8..<16].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) } : 0
            let code: ErrorCode = { if case .unknownType = error { return .unknownType } else { return .malformedFrame } }()
            enqueue(c, Wire.error(code, error.description, requestId: rid))
        }
    }

    /// Formats a fresh ring pair for client c and tells it where (over the
    /// socket). From then on replies that fit a slot travel by ring.
    func openRings(for c: Connection, requestId: UInt64) {
        guard endpoints[c.id] == nil, let pair = freePairs.popLast() else {
            sendSocket(c, Wire.error(.outOfMemory, "no free ring pair (at most \(Self.maxRingClients) ring clients); keep using the socket", requestId: requestId))
            return
        }
        let m = region.memory()
        let line = region.lineSize.bytes
        let base = ringArea + pair * 2 * ringBytes
        let req = try! RingLayout(base: base, lineSize: line, slotCount: Self.ringSlots, slotSize: Self.ringSlotSize)
        let rep = try! RingLayout(base: base + ringBytes, lineSize: line, slotCount: Self.ringSlots, slotSize: Self.ringSlotSize)
        pairEpochs[pair] += 1
        Ring.format(req, producer: UInt32(c.id & 0xFFFF_FFFF), consumer: 0, epoch: pairEpochs[pair], in: m)
        Ring.format(rep, producer: 0, consumer: UInt32(c.id & 0xFFFF_FFFF), epoch: pairEpochs[pair], in: m)
        guard let producer = try? RingProducer(memory: m, layout: rep) else {
            freePairs.append(pair)
            sendSocket(c, Wire.error(.malformedFrame, "the reply ring could not be attached; keep using the socket", requestId: requestId))
            return
        }
        endpoints[c.id] = RingEndpoint(pair: pair, requests: RingConsumer(memory: m, layout: req, ackBatch: 8), replies: producer)
        sendSocket(c, Wire.encode(Wire.RingPair(requests: req.base, replies: rep.base, length: ringBytes, doorbell: doorbell), requestId: requestId))
        lastRingActivity = monotonicNanos()
    }

    /// Posts queued replies into a ring client's reply ring while it has room.
    func flushPending(_ e: RingEndpoint) {
        while let frame = e.pending.first {
            let r: PostResult
            do { r = try frame.withUnsafeBytes { try e.replies.post(kind: 1, requestId: 0, payload: $0) } } catch {
                // The client corrupted its side of the reply ring: it cannot be served.
                logger.warning("reply ring unusable: \(error)")
                e.pending.removeAll()
                if let c = connections.first(where: { endpoints[$0.key] === e })?.value { drop(c, why: "corrupt reply ring") }
                return
            }
            guard case .posted = r else { return }
            e.pending.removeFirst()
        }
    }

    func dispatch(_ actions: [StoreAction]) {
        for a in actions {
            switch a {
            case .reply(let client, let rid, let response):
                if let c = connections[client] { enqueue(c, Wire.encode(response, requestId: rid)) }
            case .notify(let client, let n):
                if let c = connections[client] { enqueue(c, Wire.encode(n)) }
            case .removed:
                break
            }
        }
    }

    /// Replies and notifications: by the client's reply ring when it has
    /// one and the frame fits a slot (in order behind anything pending),
    /// else by the socket.
    func enqueue(_ c: Connection, _ frame: [UInt8]) {
        if let e = endpoints[c.id], frame.count <= Self.ringSlotSize - RingLayout.slotHeaderBytes {
            e.pending.append(frame)
            flushPending(e)
            if e.pending.count > Self.maxPendingReplies { drop(c, why: "not reading its reply ring") }
            return
        }
        sendSocket(c, frame)
    }

    func sendSocket(_ c: Connection, _ frame: [UInt8]) {
        guard !c.dropped else { return }
        if frame.count > Frame.maxBytes {
            // A reply larger than any frame (a list of a huge store): say so.
            let rid = frame[8..<16].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) }
            c.outbox.append(Wire.error(.frameTooLarge, "reply of \(frame.count) bytes exceeds the \(Frame.maxBytes)-byte frame limit (too many objects to list in one reply)", requestId: rid))
        } else {
            c.outbox.append(frame)
        }
        armSend(c)
    }

    /// Sends what is queued (the error that explains the close), then closes.
    func closeAfterSend(_ c: Connection) {
        c.closing = true
        if c.sending == nil { if c.outbox.isEmpty { finishClose(c) } else { armSend(c) } }
    }

    /// The peer is gone: the core aborts its unsealed objects and drops its references.
    func drop(_ c: Connection, why: String) {
        logger.info("client disconnected", metadata: ["client": "\(c.id)", "why": "\(why)"])
        c.dropped = true
        c.closing = true
        if c.sending == nil { finishClose(c) }
    }

    func finishClose(_ c: Connection) {
        guard connections.removeValue(forKey: c.id) != nil else { return }
        shutdownSocket(c.fd)   // completes an outstanding recv
        close(c.fd)
        if c.recvArmed { retired[c.id] = c }
        if let e = endpoints.removeValue(forKey: c.id) { freePairs.append(e.pair) }
        dispatch(core.handle(.disconnected(c.id), now: monotonicNanos()))
    }

    private func shutdownSocket(_ fd: Int32) { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
}

public enum DaemonError: Error, CustomStringConvertible {
    case system(SystemCallError)
    case badOption(String)
    public var description: String {
        switch self {
        case .system(let e): return e.description
        case .badOption(let s): return s
        }
    }
}
