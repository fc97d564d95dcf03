#if canImport(Glibc)
import Glibc
#endif
import CPlenumShim
import PlenumMemory
import PlenumRing
import PlenumStore
import PlenumWire

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
    /// Requests sent by `submit` whose replies have not arrived, and
    /// replies that arrived before anyone asked for them.
    let inFlight = ReplyTable<Result<StoreResponse, RemoteError>>()
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
    /// The store's wake word (doorbell + 8) as last read (SPEC §9.6).
    var wakeSeen: UInt64 = 0
    /// How long one sleep in poll(2) lasts before the ring is polled again
    /// without a wake: it only bounds the damage of a lost wake (SPEC §9.6).
    /// Tests raise it so that only the store's wake can end a sleep.
    var sleepPollMs: Int32 = 50
    /// Counters for diagnostics and tests: frames that came by the socket
    /// (the greeting's excluded), and sleeps the store's wake ended.
    public internal(set) var framesBySocket = 0
    public internal(set) var wakes = 0
    /// How often this client slept waiting for the store (SPEC §9.6).
    public var sleepCount: UInt64 { sleeps }
    /// The pieces of a reply frame longer than a slot (SPEC §9.6).
    var assembler = PieceAssembler(limit: Frame.maxBytes)
    public var usesRings: Bool { requests != nil }
    /// Peer regions (SPEC §10.7), by handle; kept mapped while connected.
    var peerRegions: [Int: (info: Wire.RegionInfo, mapping: Mapping, memory: MappedMemory)] = [:] {
        // A peek holds the memory of the handles it found: let go of them
        // when the set of handles changes (a handle's mapping never does).
        didSet { if indexPeeks != nil, peerRegions.count != oldValue.count || peerRegions.keys.contains(where: { oldValue[$0] == nil }) { indexPeeks!.forget() } }
    }
    /// This client's reads of directory indexes (SPEC §10.4 "Client
    /// peeks"): set up when the store publishes its view.
    var indexPeeks: IndexPeeks?
    /// Whether `contains` reads the id's home's directory index itself
    /// when it can (SPEC §10.4 "Client peeks"; on by default). Off, every
    /// lookup goes to the store (benchmarks compare the two).
    public var readsIndexes = true
    /// Lookups this client answered from an index itself, and lookups it
    /// sent to its store while it reads indexes (SPEC §10.4 "Client peeks").
    public var indexPeekCounts: (answered: Int, asked: Int) { (indexPeeks?.answered ?? 0, indexPeeks?.asked ?? 0) }
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
        indexPeeks = findClusterView()
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
            if let result = try take(next(socketEvery: byRing ? 64 : 1), awaiting: rid) {
                switch result {
                case .success(let response): return response
                case .failure(let e): throw .remote(e)
                }
            }
        }
    }

    /// Files an incoming frame: a notification is queued, the reply to
    /// `awaiting` is returned, one to a request in flight (`submit`) is
    /// kept in `inFlight`, anything else (a stray reply) is dropped.
    @discardableResult
    func take(_ incoming: Wire.Incoming, awaiting rid: UInt64) -> Result<StoreResponse, RemoteError>? {
        switch incoming {
        case .notification(let n): notifications.append(n)
        case .ringsOpened, .regions, .clusterStatus, .writeGranted, .verified, .hopTrace, .metrics, .wake: break
        case .reply(let r, let result):
            if let p = indexPeeks, r < nextRequest {      // a stray id proves nothing
                if !p.unanswered.isEmpty { p.unanswered.remove(r) }
                p.highestAnswered = max(p.highestAnswered, r)
            }
            if r == rid { return result }
            _ = inFlight.arrive(r, result)
        }
        return nil
    }

    /// Sends a frame nothing answers (a quiet release): by the request ring
    /// when the client has one, else by the socket.
    func sendOneWay(_ frame: (UInt64) -> [UInt8]) throws(ClientError) {
        let rid = nextRequest
        nextRequest += 1
        let bytes = frame(rid)
        if try !post(bytes) { try send(bytes) }
        indexPeeks?.quietRequest = rid
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
            if case .reply(rid, .failure(let e)) = incoming { throw .remote(e) }
            take(incoming, awaiting: 0)   // notifications and replies to requests in flight are kept
        }
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
        var chunk: [UInt8] = []
        while true {
            do {
                if let length = try Frame.complete(input) {
                    let frame = Array(input[0..<length])
                    input.removeFirst(length)
                    framesBySocket += 1
                    return try Wire.decodeIncoming(frame)
                }
            } catch { throw .protocolError(error) }
            if !blocking {
                // Polled often while waiting on the rings: look before
                // making room for 64 KiB (an allocation per look cost more
                // than the rest of the wait).
                var byte: UInt8 = 0
                let peeked = Glibc.recv(fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
                if peeked < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return nil }
            }
            if chunk.isEmpty { chunk = [UInt8](repeating: 0, count: 65536) }
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
