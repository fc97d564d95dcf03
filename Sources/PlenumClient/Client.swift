#if canImport(Glibc)
import Glibc
#endif
import CPlenumShim
import PlenumMemory
import PlenumRing
import PlenumStore
import PlenumWire

/// Why a client call failed. Each says what to do.
public enum ClientError: Error, CustomStringConvertible {
    case connect(SystemCallError)
    case protocolError(WireError)
    case remote(RemoteError)
    case closed
    case released(ObjectID)
    case unexpected(String)
    /// A location outside every region this client maps.
    case badLocation(ObjectLocation)
    /// A write through a client that connected with `.readOnly`.
    case readOnly

    public var description: String {
        switch self {
        case .connect(let e): return "cannot reach the store: \(e); is `plenum store` running on that socket?"
        case .protocolError(let e): return "the store sent a malformed frame: \(e)"
        case .remote(let e): return e.message
        case .closed: return "the store closed the connection"
        case .released(let id): return "object \(id) was released: get it again to read it"
        case .readOnly: return "this client connected read-only: connect with access .readWrite to create objects"
        case .unexpected(let s): return "unexpected reply: \(s)"
        case .badLocation(let l): return "the store named bytes outside its regions (region \(l.region), offset \(l.offset), \(l.end - l.offset) bytes): a store bug or a corrupt peer"
        }
    }
}

/// A read-only, zero-copy view of a sealed object, valid until `release`.
public final class ObjectBuffer {
    public let id: ObjectID
    public let location: ObjectLocation
    let memory: MappedMemory
    public internal(set) var isReleased = false

    /// Invariant 4 (SPEC §2) asks a node that did not write an object to
    /// invalidate its range before the first read. Objects of this node were
    /// written in this cache domain; an object in a peer's memory was
    /// invalidated and its digest checked by this node's store before the
    /// reference was granted (SPEC §10.8), and this client shares that
    /// store's cache. The caller checked `location` lies inside `memory`.
    init(id: ObjectID, location: ObjectLocation, memory: MappedMemory) {
        assert(location.end <= memory.size)
        self.id = id
        self.location = location
        self.memory = memory
    }

    /// Which region the bytes are in (0: the store's own; SPEC §10.7).
    public var region: Int { location.region }

    public func withData<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard !isReleased else { throw ClientError.released(id) }
        return try memory.read(at: location.offset, count: location.dataSize) { try body($0) }
    }

    public func withMetadata<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard !isReleased else { throw ClientError.released(id) }
        return try memory.read(at: location.metadataOffset, count: location.metadataSize) { try body($0) }
    }

    public var data: [UInt8] { get throws { try withData { Array($0) } } }
}

/// A connection to a local store (SPEC.md §9): requests over the Unix
/// socket, object bytes read and written in place in the mapped region.
public final class PlenumClient {
    /// What a client maps (SPEC §9.7): `.readOnly` maps every region
    /// read-only and may not change the store; `.readWrite` asks the store
    /// for write access when it connects.
    public enum Access: Sendable { case readOnly, readWrite }

    public let hello: Hello
    public let access: Access
    let fd: Int32
    let mapping: Mapping
    public let memory: MappedMemory
    var nextRequest: UInt64 = 1
    var input: [UInt8] = []
    public internal(set) var notifications: [StoreNotification] = []
    /// Shared-memory rings to the store, once `useRings()` succeeded.
    var requests: RingProducer<MappedMemory>?
    var replies: RingConsumer<MappedMemory>?
    /// The ring file the store passed (SPEC §9.6): rings and doorbell.
    var ringMemory: MappedMemory?
    var doorbell = 0
    /// This client's sleeping word in the ring file (SPEC §9.6) and the
    /// number of its current sleep (0: awake).
    var sleepWord = 0
    var sleeps: UInt64 = 0
    var asleep = false
    /// Counters for diagnostics and tests: frames that came by the socket
    /// (the greeting's excluded), and `wake` frames among them.
    public private(set) var framesBySocket = 0
    public private(set) var wakes = 0
    /// How often this client slept waiting for the store (SPEC §9.6).
    public var sleepCount: UInt64 { sleeps }
    /// The pieces of a reply frame longer than a slot (SPEC §9.6).
    var assembler = PieceAssembler(limit: Frame.maxBytes)
    public var usesRings: Bool { requests != nil }
    /// Peer regions (SPEC §10.7), by handle; kept mapped while connected.
    var peerRegions: [Int: (info: Wire.RegionInfo, mapping: Mapping, memory: MappedMemory)] = [:]
    /// Descriptors received with frames, in arrival order.
    var receivedFDs: [Int32] = []

    /// Connects to the store at `socketPath`. With `rings` (the default) the
    /// client asks for shared-memory rings (SPEC §9.6) and uses them for
    /// every request; when the store has none to give it keeps to the socket.
    /// With `prefault` (the default) it populates its mapping of a region the
    /// store populated, so no later access takes a page fault: a long-lived
    /// client's choice; a one-shot command passes false (populating a
    /// gigabyte region takes about 0.1 s).
    public init(socketPath: String, access: Access = .readWrite, rings: Bool = true, prefault: Bool = true) throws(ClientError) {
        self.access = access
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.fd = fd
        guard fd >= 0 else { throw .connect(.last("socket")) }
        let rc: Int32
        do { rc = try UnixSocket.withAddress(socketPath) { connect(fd, $0, $1) } } catch {
            close(fd)
            throw .connect(SystemCallError("connect", errno: ENAMETOOLONG, subject: socketPath, hint: error.description))
        }
        guard rc == 0 else { let e = SystemCallError.last("connect", subject: socketPath); close(fd); throw .connect(e) }
        // The greeting carries the region descriptor.
        var regionFD: Int32 = -1
        var buffer = [UInt8](repeating: 0, count: 256)
        var input: [UInt8] = []
        while true {
            var passed: Int32 = -1
            let n = buffer.withUnsafeMutableBytes { plenum_recv_with_fd(fd, $0.baseAddress, $0.count, &passed) }
            if passed >= 0 { regionFD = passed }
            guard n > 0 else { close(fd); throw n == 0 ? .closed : .connect(.last("recvmsg")) }
            input += buffer[0..<Int(n)]
            if (try? Frame.complete(input)) ?? nil != nil { break }
        }
        do {
            let length = try Frame.complete(input)!
            hello = try Wire.decodeHello(Array(input[0..<length]))
            input.removeFirst(length)
        } catch { close(fd); throw .protocolError(error) }
        guard regionFD >= 0 else { close(fd); throw .unexpected("no region descriptor in the greeting") }
        if access == .readWrite {
            // The greeting's descriptor is read-only; ask for a writable one.
            close(regionFD)
            regionFD = -1
            do throws(ClientError) { regionFD = try Self.writeAccess(fd, &input) } catch { close(fd); throw error }
        }
        self.input = input
        defer { close(regionFD) }
        do {
            mapping = try Mapping(fd: regionFD, size: hello.regionSize, subject: "store region", writable: access == .readWrite)
        } catch { close(fd); throw .connect(error) }
        guard let line = try? LineSize(hello.lineSize) else { close(fd); throw .unexpected("line size \(hello.lineSize)") }
        memory = mapping.memory(lineSize: line)
        // When the store populated the region (SPEC §9.4 "Memory": every
        // block of the file allocated), populating this process's page
        // tables too spares every first touch of a page a fault later. Best
        // effort: without it pages fault in as used. A store started with
        // --no-prefault is left that way.
        var st = stat()
        if prefault, fstat(regionFD, &st) == 0, Int(st.st_blocks) * 512 >= hello.regionSize {
            try? mapping.populate(subject: "store region", forWriting: access == .readWrite)
        }
        if rings {
            // Refused (no free ring pair, no memory for a ring file): the socket serves.
            do throws(ClientError) { try useRings() } catch {
                if case .remote = error {} else { throw error }
            }
        }
    }

    deinit {
        close(fd)
        for f in receivedFDs { close(f) }
    }

    /// Sends `writeAccess` and waits for its reply and descriptor (before
    /// any other request, so nothing else can arrive meanwhile).
    static func writeAccess(_ fd: Int32, _ input: inout [UInt8]) throws(ClientError) -> Int32 {
        let request = Wire.encodeWriteAccess(requestId: 1 << 63)
        guard request.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else { throw .closed }
        var passed: Int32 = -1
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if let length = try? Frame.complete(input) {
                let frame = Array(input[0..<length])
                input.removeFirst(length)
                switch try? Wire.decodeIncoming(frame) {
                case .writeGranted?:
                    guard passed >= 0 else { throw .unexpected("write access granted without a descriptor") }
                    return passed
                case .reply(_, .failure(let e))?:
                    if passed >= 0 { close(passed) }
                    throw .remote(e)
                default:
                    if passed >= 0 { close(passed) }
                    throw .unexpected("unexpected reply to a write-access request")
                }
            }
            var got: Int32 = -1
            let n = buffer.withUnsafeMutableBytes { plenum_recv_with_fd(fd, $0.baseAddress, $0.count, &got) }
            if got >= 0 { if passed >= 0 { close(passed) }; passed = got }
            guard n > 0 else { if passed >= 0 { close(passed) }; throw .closed }
            input += buffer[0..<Int(n)]
        }
    }

    // MARK: calls

    func call(_ request: StoreRequest) throws(ClientError) -> StoreResponse {
        try exchange { Wire.encode(request, requestId: $0) }
    }

    /// Sends the frame built for a fresh request id and waits for its reply,
    /// queueing notifications that arrive meanwhile. With rings, the frame
    /// goes through the request ring (in pieces if longer than a slot) and
    /// the reply is polled from the reply ring.
    func exchange(_ frame: (UInt64) -> [UInt8]) throws(ClientError) -> StoreResponse {
        let rid = nextRequest
        nextRequest += 1
        let bytes = frame(rid)
        let byRing = try post(bytes)
        if !byRing { try send(bytes) }
        while true {
            // A request that went by the socket (the ring is unusable) is
            // answered there: look on every round, not every 64th.
            switch try next(socketEvery: byRing ? 64 : 1) {
            case .notification(let n): notifications.append(n)
            case .ringsOpened, .regions, .clusterStatus, .writeGranted, .verified, .wake: continue
            case .reply(let r, let result):
                guard r == rid else { continue }
                switch result {
                case .success(let response): return response
                case .failure(let e): throw .remote(e)
                }
            }
        }
    }

    /// Sends a frame nothing answers (a quiet release): by the request ring
    /// when the client has one, else by the socket.
    func sendOneWay(_ frame: (UInt64) -> [UInt8]) throws(ClientError) {
        let rid = nextRequest
        nextRequest += 1
        let bytes = frame(rid)
        if try !post(bytes) { try send(bytes) }
    }

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
        guard pair.doorbell >= 0, pair.doorbell + 8 <= m.size else { throw .unexpected("doorbell outside the ring file") }
        doorbell = pair.doorbell
        sleepWord = m.size - line.bytes
        guard sleepWord >= pair.replies + pair.length, sleepWord > doorbell else { throw .unexpected("no room for the sleeping word in the ring file") }
        ringMemory = m
    }

    /// Sends a request answered on the socket (descriptors, replies larger
    /// than a slot) and waits for the reply `pick` recognises for its id;
    /// notifications that arrive meanwhile are queued.
    func socketCall<T>(_ frame: (UInt64) -> [UInt8], _ pick: (Wire.Incoming, UInt64) -> T?) throws(ClientError) -> T {
        let rid = nextRequest
        nextRequest += 1
        try send(frame(rid))
        while true {
            let incoming = try receiveFromSocket()
            if let v = pick(incoming, rid) { return v }
            switch incoming {
            case .notification(let n): notifications.append(n)
            case .reply(rid, .failure(let e)): throw .remote(e)
            default: continue
            }
        }
    }

    /// Posts a request frame to the request ring, in pieces when it is
    /// longer than a slot (SPEC §9.6); false if it must go by the socket
    /// (no rings, or the ring refused its first piece).
    func post(_ frame: [UInt8]) throws(ClientError) -> Bool {
        guard var producer = requests else { return false }
        var backoff = Backoff()
        var offset = 0
        defer { requests = producer }
        while true {
            let reached: Int
            do { reached = try RingPieces.post(frame, from: offset, into: &producer) } catch {
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
        try ringDoorbell()
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
        guard var consumer = replies else { return try receiveFromSocket() }
        defer { if asleep { setAsleep(false) } }
        var backoff = Backoff(spins: Self.spins, yields: Self.yields)
        var idle = 0, rounds = 0
        while true {
            let got = consumer.poll { self.assembler.add($0) }
            replies = consumer
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
                    if incoming == .wake { wakes += 1; continue }
                    return incoming
                }
                if asleep {
                    // The ring was empty after the word was published: wait
                    // for the store's wake (or any frame) on the socket. The
                    // timeout only bounds the damage of a lost wake.
                    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    if Glibc.poll(&p, 1, 50) > 0, let incoming = try receiveIfReady() {
                        if incoming == .wake { wakes += 1; continue }
                        return incoming
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

    /// Spins and yields before a client sleeps waiting for a reply: a
    /// millisecond or two, longer than a store takes for a get of a few
    /// thousand ids. Sleeping sooner made such gets 1.5× slower on a
    /// virtual machine, where waking an idle CPU is slow (issue 12).
    static let spins = 200, yields = 2000

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
    }

    /// A frame from the socket if one is complete or arrives without waiting.
    func receiveIfReady() throws(ClientError) -> Wire.Incoming? { try readFrame(blocking: false) }

    /// Sends raw bytes (tests use this for malformed frames).
    public func send(_ bytes: [UInt8]) throws(ClientError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw .closed }
            done += n
        }
    }

    /// The next frame from the store, by the reply ring or the socket
    /// (tests use this after `send`).
    public func receive() throws(ClientError) -> Wire.Incoming {
        try next(socketEvery: 1)
    }

    /// The next frame from the socket, waiting for it.
    func receiveFromSocket() throws(ClientError) -> Wire.Incoming {
        guard let incoming = try readFrame(blocking: true) else { throw .closed }
        return incoming
    }

    /// The next whole frame from the socket; nil when not blocking and none
    /// is there yet.
    func readFrame(blocking: Bool) throws(ClientError) -> Wire.Incoming? {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            do {
                if let length = try Frame.complete(input) {
                    let frame = Array(input[0..<length])
                    input.removeFirst(length)
                    framesBySocket += 1
                    return try Wire.decodeIncoming(frame)
                }
            } catch { throw .protocolError(error) }
            var fds = [Int32](repeating: -1, count: Int(PLENUM_MAX_FDS))
            var count: Int32 = 0
            let n = chunk.withUnsafeMutableBytes { b in
                fds.withUnsafeMutableBufferPointer { plenum_recv_with_fds(fd, b.baseAddress, b.count, blocking ? 0 : Int32(MSG_DONTWAIT), $0.baseAddress, PLENUM_MAX_FDS, &count) }
            }
            receivedFDs += fds.prefix(Int(count))
            if n < 0 && !blocking && (errno == EAGAIN || errno == EWOULDBLOCK) { return nil }
            guard n > 0 else { throw .closed }
            input += chunk[0..<n]
        }
    }
}
