import CPlenumShim
import Foundation
import PlenumClient
import PlenumMemory
import PlenumPlasma
import PlenumStore
import PlenumWire
import Testing

/// A minimal Plasma client speaking SPEC §11 as libplasma does: frames,
/// descriptors after replies, mappings of `mmap_size − 8` bytes.
final class PlasmaTestClient {
    let fd: Int32
    var input: [UInt8] = []
    var descriptors: [Int32] = []
    var mappings: [Int32: UnsafeMutableRawPointer] = [:]

    init(_ path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let rc = try UnixSocket.withAddress(path) { connect(fd, $0, $1) }
        guard rc == 0 else { close(fd); throw CocoaError(.fileNoSuchFile) }
        var tv = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd); for d in descriptors { close(d) } }

    func send(_ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
    func send(_ q: PlasmaRequest) { send(PlasmaCodec.encode(q)) }

    /// Reads more bytes (and any descriptors); false at end of stream.
    @discardableResult func fill() -> Bool {
        var buf = [UInt8](repeating: 0, count: 65536)
        var fds = [Int32](repeating: -1, count: 8)
        var n: Int32 = 0
        let got = buf.withUnsafeMutableBytes { plenum_recv_with_fds(fd, $0.baseAddress, $0.count, 0, &fds, 8, &n) }
        descriptors += fds[0..<Int(n)]
        guard got > 0 else { return false }
        input += buf[0..<got]
        return true
    }

    func reply() throws -> PlasmaReply {
        while true {
            if let h = try PlasmaCodec.header(input, from: 0), input.count >= 24 + h.length {
                let body = Array(input[24..<(24 + h.length)])
                input.removeFirst(24 + h.length)
                return try #require(try PlasmaCodec.decodeReply(type: h.type, body: body))
            }
            guard fill() else { throw CocoaError(.fileReadUnknown) }
        }
    }

    /// The descriptor byte after a reply that names a new store_fd; mapped.
    func map(storeFD: Int32, mmapSize: Int64) throws -> UnsafeMutableRawPointer {
        if let m = mappings[storeFD] { return m }
        while descriptors.isEmpty || input.isEmpty { guard fill() else { throw CocoaError(.fileReadUnknown) } }
        input.removeFirst()
        let d = descriptors.removeFirst()
        defer { close(d) }
        let p = try #require(mmap(nil, Int(mmapSize) - 8, PROT_READ | PROT_WRITE, MAP_SHARED, d, 0))
        #expect(p != MAP_FAILED)
        mappings[storeFD] = p
        return p
    }

    /// True once the store closed this connection; false if it kept it
    /// open for 20 s.
    func closedByStore() -> Bool { PlenumProcessTests.closedByStore(fd: fd, within: 20) }
}

@Suite(.serialized) struct PlasmaProcessTests {
    static func id(_ n: UInt8) -> ObjectID { ObjectID(bytes: [UInt8](repeating: n, count: 20))! }

    final class Store {
        let socket: String, plasma: String
        let process: PlenumProcess.Running
        init(tag: String = #function) throws {
            socket = "/tmp/plenum-plasma-\(getpid())-\(tag.filter { $0.isLetter }.prefix(16)).sock"
            plasma = socket + ".plasma"
            process = try PlenumProcess.Running(["store", "--socket", socket, "--memory", "16M", "--plasma-socket", plasma])
            let p = process.process, sockets = [socket, plasma]
            guard eventually(120, { !p.isRunning || sockets.allSatisfy(UnixSocket.acceptsConnections) }), p.isRunning else {
                throw CocoaError(.fileNoSuchFile)
            }
        }
        func stop() -> Int32 { process.process.terminate(); return process.finish(timeout: 30).status }
    }

    @Test func aPlasmaClientWritesInPlaceAndOthersOfBothProtocolsRead() throws {
        let store = try Store()
        let a = try PlasmaTestClient(store.plasma)
        a.send(.connect)
        #expect(try a.reply() == .connect(memoryCapacity: 16 << 20))
        let x = Self.id(1), missing = Self.id(2), empty = Self.id(3)
        a.send(.create(x, evictIfFull: true, dataSize: 100, metadataSize: 4, deviceNum: 0))
        guard case .create(x, let spec, .ok, let storeFD, let size) = try a.reply() else { Issue.record("create"); return }
        #expect(spec.segmentIndex == storeFD && spec.metadataOffset == spec.dataOffset + 100)
        let base = try a.map(storeFD: storeFD, mmapSize: size)
        for i in 0..<104 { base.storeBytes(of: UInt8(i), toByteOffset: Int(spec.dataOffset) + i, as: UInt8.self) }
        a.send(.seal(x))
        #expect(try a.reply() == .seal(x, .ok))
        // Refusals a Plasma client can read: a GPU object, a seal of nothing it created.
        a.send(.create(missing, evictIfFull: true, dataSize: 8, metadataSize: 0, deviceNum: 1))
        #expect(try a.reply() == .create(missing, .missing, .outOfMemory, storeFD: -1, mmapSize: 0))
        a.send(.seal(missing))
        #expect(try a.reply() == .seal(missing, .objectNonexistent))
        a.send(.create(empty, evictIfFull: true, dataSize: 0, metadataSize: 0, deviceNum: 0))
        guard case .create(empty, _, .ok, _, _) = try a.reply() else { Issue.record("an empty object is an object"); return }
        a.send(.seal(empty))
        #expect(try a.reply() == .seal(empty, .ok))

        // Another Plasma client: one get returns both, and says which is missing.
        let b = try PlasmaTestClient(store.plasma)
        b.send(.get([x, missing], timeoutMs: 0))
        guard case .get([x, missing], let specs, let fds, let sizes) = try b.reply() else { Issue.record("get"); return }
        #expect(specs[1] == .missing && fds.count == 1)
        let view = try b.map(storeFD: fds[0], mmapSize: sizes[0])
        #expect((0..<104).allSatisfy { view.load(fromByteOffset: Int(specs[0].dataOffset) + $0, as: UInt8.self) == UInt8($0) })
        b.send(.get([x], timeoutMs: 0))   // the descriptor is not sent twice
        guard case .get(_, _, let again, _) = try b.reply() else { Issue.record("get again"); return }
        #expect(again == fds && b.descriptors.isEmpty)
        // Plasma counts references per client: two gets, one reference.
        b.send(.list)
        guard case .list(let rows) = try b.reply() else { Issue.record("list"); return }
        #expect(rows.first { $0.id == x }?.refCount == 2)   // a (creator) and b
        #expect(rows.first { $0.id == x }?.constructDuration ?? -1 >= 0)

        // A Plenum client sees the same object, byte for byte (the store
        // wrote it back and digested it at seal: verify passes).
        let native = try PlenumClient(socketPath: store.socket)
        #expect(try native.contains(x))
        #expect(try native.verify([x]) == [nil])
        let buf = try #require(try native.get([x], timeoutMs: 0)[0])
        #expect(try buf.withData { Array($0) } == (0..<100).map(UInt8.init))
        try native.release(buf)
        // Deleting a referenced object is refused; after both releases it works.
        let refused = try native.delete([x])
        #expect(refused.count == 1 && refused[0]?.description.contains("in use") == true, "\(refused)")
        b.send(.release(x))
        a.send(.release(x))
        a.send(.delete([x, missing]))
        #expect(try a.reply() == .delete([x, missing], [.ok, .objectNonexistent]))
        #expect(try native.contains(x) == false)
        #expect(store.stop() == 0)
    }

    /// SPEC §11.7: `plasma-store-server`'s region is in no directory once
    /// the store runs (pyarrow's tests SIGKILL the server), yet clients map
    /// it through the descriptor they are passed.
    @Test func thePlasmaServerEntryLeavesNoRegionFileEvenWhenKilled() throws {
        let dir = "/tmp/plenum-plasma-entry-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let sock = dir + "/plasma.sock"
        let server = try PlenumProcess.Running(["plasma-store-server", "-m", "1000000", "-s", sock, "-d", dir])
        let p = server.process
        #expect(eventually(120) { !p.isRunning || UnixSocket.acceptsConnections(sock) })
        let c = try PlasmaTestClient(sock)
        c.send(.connect)
        #expect(try c.reply() == .connect(memoryCapacity: 1_000_000))
        let x = Self.id(9)
        c.send(.create(x, evictIfFull: true, dataSize: 64, metadataSize: 0, deviceNum: 0))
        guard case .create(x, let spec, .ok, let storeFD, let size) = try c.reply() else { Issue.record("create"); return }
        let base = try c.map(storeFD: storeFD, mmapSize: size)
        base.storeBytes(of: 0xAB, toByteOffset: Int(spec.dataOffset), as: UInt8.self)
        c.send(.seal(x))
        #expect(try c.reply() == .seal(x, .ok))
        let files = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(files.filter { $0.hasSuffix(".region") }.isEmpty, "\(files)")
        kill(server.process.processIdentifier, SIGKILL)
        _ = server.finish(timeout: 10)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".region") }.isEmpty)
    }

    @Test func subscribersHearSealsAndEvictionsOnTheirSocket() throws {
        let store = try Store()
        let a = try PlasmaTestClient(store.plasma)
        let old = Self.id(9)
        a.send(.createAndSeal([PlasmaInlineObject(id: old, data: [1, 2, 3], metadata: [4])], batch: false))
        #expect(try a.reply() == .createAndSeal(.ok, batch: false))
        var pair: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        var tv = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(pair[0], SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        a.send(.subscribe)
        let one: [UInt8] = [0x14]
        let sent = one.withUnsafeBytes { plenum_send_with_fd(a.fd, $0.baseAddress, 1, pair[1]) }
        #expect(sent == 1)
        close(pair[1])
        func next() throws -> PlasmaObjectInfo {
            var len = [UInt8](repeating: 0, count: 8)
            #expect(recv(pair[0], &len, 8, Int32(MSG_WAITALL)) == 8)
            let n = len.withUnsafeBytes { Int($0.load(as: Int64.self)) }
            var body = [UInt8](repeating: 0, count: n)
            #expect(recv(pair[0], &body, n, Int32(MSG_WAITALL)) == n)
            return try #require(try PlasmaCodec.decodeNotification(body).first)
        }
        // First what was sealed before the subscription, then what follows.
        #expect(try next() == PlasmaObjectInfo(id: old, dataSize: 3, metadataSize: 1))
        let y = Self.id(10)
        a.send(.createAndSeal([PlasmaInlineObject(id: y, data: Array(repeating: 5, count: 50), metadata: [])], batch: true))
        #expect(try a.reply() == .createAndSeal(.ok, batch: true))
        #expect(try next() == PlasmaObjectInfo(id: y, dataSize: 50, metadataSize: 0))
        a.send(.evict(bytes: 1))
        #expect(try a.reply() == .evict(bytes: 4))
        #expect(try next() == PlasmaObjectInfo(id: old, dataSize: -1, metadataSize: -1, isDeletion: true))
        close(pair[0])
        #expect(store.stop() == 0)
    }

    /// SPEC §11.1: descriptors come only with a subscription. The store
    /// receives in the kernel (io_uring recvmsg into the connection's
    /// slot); a client that passes descriptors nobody asked for is
    /// disconnected once it has passed more than 16, every one it passed is
    /// closed, and the store serves on.
    @Test func unaskedDescriptorsDisconnectTheirSenderAndAreClosed() throws {
        let store = try Store()
        let good = try PlasmaTestClient(store.plasma)
        good.send(.contains(Self.id(1)))
        #expect(try good.reply() == .contains(Self.id(1), false))
        let fdDir = "/proc/\(store.process.process.processIdentifier)/fd"
        let before = try FileManager.default.contentsOfDirectory(atPath: fdDir).count
        let bad = try PlasmaTestClient(store.plasma)
        let devNull = open("/dev/null", O_RDONLY)
        defer { close(devNull) }
        // One byte and one descriptor per message: a stream recvmsg stops
        // after a message that carries descriptors, so each is its own
        // completion; the 17th is one too many.
        let one: [UInt8] = [0x14]
        for _ in 0..<17 {
            guard one.withUnsafeBytes({ plenum_send_with_fd(bad.fd, $0.baseAddress, 1, devNull) }) == 1 else { break }
        }
        #expect(bad.closedByStore())
        good.send(.contains(Self.id(2)))
        #expect(try good.reply() == .contains(Self.id(2), false))
        // The dropped connection and the 17 descriptors it passed are closed.
        #expect(try FileManager.default.contentsOfDirectory(atPath: fdDir).count == before)
        #expect(store.stop() == 0)
    }

    @Test func malformedPlasmaFramesDisconnectOnlyTheirSender() throws {
        let store = try Store()
        let good = try PlasmaTestClient(store.plasma)
        var bad: [[UInt8]] = []
        var version = PlasmaCodec.encode(.connect); version[0] = 7; bad.append(version)
        var huge = PlasmaCodec.encode(.connect); huge[22] = 0x7F; bad.append(huge)
        bad.append(PlasmaCodec.frame(.createRequest, [0xFF, 0xFF, 0, 0, 1, 2, 3, 4]))          // root outside the body
        bad.append(PlasmaCodec.frame(.containsRequest, FlatBufferWriter.build([.string([1, 2])])))  // a 2-byte id
        bad.append(PlasmaCodec.frame(.dataRequest, FlatBufferWriter.build([])))                  // not served
        var unknown = PlasmaCodec.encode(.connect); unknown[8] = 99; bad.append(unknown)
        for frame in bad {
            let c = try PlasmaTestClient(store.plasma)
            c.send(frame)
            #expect(c.closedByStore())
            good.send(.contains(Self.id(1)))
            #expect(try good.reply() == .contains(Self.id(1), false))
        }
        // A get of more than 4,096 ids is served (SPEC §11.9), not refused.
        let many = (0..<5_000).map { k in ObjectID(bytes: [UInt8(k & 0xFF), UInt8(k >> 8)] + [UInt8](repeating: 0x5E, count: 18))! }
        good.send(.get(many, timeoutMs: 0))
        #expect(try good.reply() == .get(many, many.map { _ in .missing }, storeFDs: [], mmapSizes: []))
        #expect(store.process.process.isRunning)
        #expect(store.stop() == 0)
    }

    /// SPEC §11.1 "Reading": a frame sent in pieces (libplasma writes
    /// cookie, type, length and body apart) is answered once whole; a
    /// client that stops inside a frame holds up nobody else, and is
    /// answered when it sends the rest.
    @Test func aFrameInPiecesIsAnsweredAndAClientStoppedMidFrameHoldsUpNobody() throws {
        let store = try Store()
        let good = try PlasmaTestClient(store.plasma), slow = try PlasmaTestClient(store.plasma)
        let frame = PlasmaCodec.encode(.contains(Self.id(7)))
        for (a, b) in [(0, 8), (8, 16), (16, 24), (24, frame.count)] { good.send(Array(frame[a..<b])) }
        #expect(try good.reply() == .contains(Self.id(7), false))
        slow.send(Array(frame[0..<30]))
        for _ in 0..<20 {
            good.send(.contains(Self.id(8)))
            #expect(try good.reply() == .contains(Self.id(8), false))
        }
        slow.send(Array(frame[30...]))
        #expect(try slow.reply() == .contains(Self.id(7), false))
        #expect(store.stop() == 0)
    }

    /// SPEC §11.9: `evict_if_full = false` is honoured — a create that would
    /// need an eviction is refused OutOfMemory and evicts nothing; the same
    /// create with `evict_if_full` evicts. A memory quota is refused
    /// (OutOfMemory), not accepted and ignored.
    @Test func evictIfFullFalseNeverEvictsAndAQuotaIsRefused() throws {
        let store = try Store()
        let a = try PlasmaTestClient(store.plasma)
        let x = Self.id(0x31), y = Self.id(0x32)
        a.send(.create(x, evictIfFull: true, dataSize: 10 << 20, metadataSize: 0, deviceNum: 0))
        guard case .create(x, _, .ok, let fd, let size) = try a.reply() else { Issue.record("create x"); return }
        _ = try a.map(storeFD: fd, mmapSize: size)
        a.send(.seal(x))
        #expect(try a.reply() == .seal(x, .ok))
        a.send(.release(x))                              // x is evictable now
        a.send(.create(y, evictIfFull: false, dataSize: 10 << 20, metadataSize: 0, deviceNum: 0))
        #expect(try a.reply() == .create(y, .missing, .outOfMemory, storeFD: -1, mmapSize: 0))
        a.send(.contains(x))
        #expect(try a.reply() == .contains(x, true), "nothing was evicted")
        a.send(.create(y, evictIfFull: true, dataSize: 10 << 20, metadataSize: 0, deviceNum: 0))
        guard case .create(y, _, .ok, _, _) = try a.reply() else { Issue.record("create y with eviction"); return }
        a.send(.contains(x))
        #expect(try a.reply() == .contains(x, false), "x was evicted for y")
        a.send(.setOptions(clientName: Array("q".utf8), outputMemoryQuota: 1 << 20))
        #expect(try a.reply() == .setOptions(.outOfMemory))
        a.send(.setOptions(clientName: Array("q".utf8), outputMemoryQuota: -1))
        #expect(try a.reply() == .setOptions(.ok))
        #expect(store.stop() == 0)
    }

    /// SPEC §11.3 "Seal": a store alone answers a Plasma seal of 64 KiB or
    /// more before it digests the object, then takes the digest while idle
    /// (a later change is detected by verify) or at once when a list or
    /// verify needs it; a smaller object is digested before the answer.
    @Test func aStoreAloneDigestsAPlasmaSealAfterAnsweringIt() throws {
        let store = try Store()
        let a = try PlasmaTestClient(store.plasma)
        let native = try PlenumClient(socketPath: store.socket)
        func pending() -> Int? {
            guard let text = try? native.metrics() else { return nil }
            // `plenum_digests_pending{…} N` (labels and float format as rendered)
            let line = text.split(separator: "\n").first { $0.hasPrefix("plenum_digests_pending") }
            return line.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) }.map { Int($0) }
        }
        /// Creates and seals an object of `size` + 3 bytes whose byte i is i·k.
        func put(_ id: ObjectID, size: Int, k: UInt8) throws -> (UnsafeMutableRawPointer, Int) {
            a.send(.create(id, evictIfFull: true, dataSize: Int64(size), metadataSize: 3, deviceNum: 0))
            guard case .create(id, let spec, .ok, let fd, let mmap) = try a.reply() else { throw CocoaError(.fileWriteUnknown) }
            let base = try a.map(storeFD: fd, mmapSize: mmap)
            let start = Int(spec.dataOffset)
            for i in 0..<(size + 3) { base.storeBytes(of: UInt8(truncatingIfNeeded: i) &* k, toByteOffset: start + i, as: UInt8.self) }
            a.send(.seal(id))
            #expect(try a.reply() == .seal(id, .ok))
            return (base, start)
        }
        func crc(size: Int, k: UInt8) -> UInt64 {
            let bytes = (0..<(size + 3)).map { UInt8(truncatingIfNeeded: $0) &* k }
            return bytes.withUnsafeBytes { UInt64(CRC32C.checksum($0)) }
        }
        // Several idle chunks' worth (64 KiB each): a list right after the
        // seal reports the digest of the bytes (taken then if still pending).
        let x = Self.id(0x41), y = Self.id(0x42)
        _ = try put(x, size: 300_001, k: 7)
        // Contains of an object sealed here is answered at once (no core
        // round), and counted like any other answer.
        a.send(.contains(x))
        #expect(try a.reply() == .contains(x, true))
        a.send(.contains(y))
        #expect(try a.reply() == .contains(y, false))
        let counted = try native.metrics().split(separator: "\n")
            .filter { $0.hasPrefix("plenum_operations_total{") && $0.contains("op=\"contains\"") }
            .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
        #expect(counted == 2, "contains answered: \(counted)")
        let row = try #require(try native.list().first { $0.id == x })
        #expect(row.digest == crc(size: 300_001, k: 7))
        #expect(try native.verify([x]) == [nil])
        // Once the store has idled, the digest is taken: a change made after
        // that is a mismatch (a digest taken at verify would match it).
        let (base, start) = try put(y, size: 200_000, k: 3)
        #expect(eventually(60) { pending() == 0 }, "the store took no digest while idle")
        base.storeBytes(of: 0xEE, toByteOffset: start + 123_456, as: UInt8.self)
        let verdict = try native.verify([y])
        #expect(verdict.count == 1 && verdict[0].map { Wire.code($0) } == .digestMismatch, "\(verdict)")
        #expect(try native.list().first { $0.id == y }?.digest == crc(size: 200_000, k: 3))
        // An object under 64 KiB is written back and digested before its
        // seal is answered: nothing pending, and a change right after is seen.
        let z = Self.id(0x43)
        let (zBase, zStart) = try put(z, size: 1000, k: 5)
        #expect(pending() == 0)
        zBase.storeBytes(of: 0xEE, toByteOffset: zStart + 10, as: UInt8.self)
        let zVerdict = try native.verify([z])
        #expect(zVerdict.count == 1 && zVerdict[0].map { Wire.code($0) } == .digestMismatch, "\(zVerdict)")
        #expect(store.stop() == 0)
    }

    /// SPEC §11.8: a Plasma client of node 1 sees node 0's object — contains,
    /// list, a seal notification — and reads it in place through node 0's
    /// region (a second store_fd), without a copy.
    @Test func aPlasmaClientOfOneNodeReadsAnotherNodesObjectInPlace() throws {
        let cluster = try TestCluster(nodes: 2, plasma: true)
        defer { _ = cluster.stop() }
        let p = try PlasmaTestClient(cluster.plasmaSocket(1))
        var pair: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { close(pair[0]) }
        var tv = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(pair[0], SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        p.send(.subscribe)
        let one: [UInt8] = [0x14]
        #expect(one.withUnsafeBytes { plenum_send_with_fd(p.fd, $0.baseAddress, 1, pair[1]) } == 1)
        close(pair[1])
        p.send(.connect)   // orders the subscription before the put below
        _ = try p.reply()
        // Peers learn that node 1 has subscribers from its next heartbeats
        // (SPEC §10.6 "Subscriptions"): wait until node 0 knows.
        #expect(cluster.eventually {
            (cluster.peer(1, seenBy: 0)?["memory"] as? [String: Any])?["subscribers"] as? Bool == true
        })
        let x = Self.id(7)
        let bytes = (0..<300).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try cluster.client(0).put(x, data: bytes, metadata: [1, 2], onNode: 0)
        var len = [UInt8](repeating: 0, count: 8)
        #expect(recv(pair[0], &len, 8, Int32(MSG_WAITALL)) == 8)
        var body = [UInt8](repeating: 0, count: len.withUnsafeBytes { Int($0.load(as: Int64.self)) })
        #expect(recv(pair[0], &body, body.count, Int32(MSG_WAITALL)) == body.count)
        #expect(try PlasmaCodec.decodeNotification(body).first == PlasmaObjectInfo(id: x, dataSize: 300, metadataSize: 2))
        p.send(.contains(x))
        #expect(try p.reply() == .contains(x, true))
        p.send(.list)
        guard case .list(let rows) = try p.reply() else { Issue.record("list"); return }
        #expect(rows.contains { $0.id == x && $0.dataSize == 300 })
        p.send(.get([x], timeoutMs: 1000))
        guard case .get([x], let specs, let fds, let sizes) = try p.reply(), specs[0].dataSize == 300 else { Issue.record("get"); return }
        #expect(fds == [specs[0].segmentIndex] && fds[0] != 1)   // a peer's region, not node 1's own
        let view = try p.map(storeFD: fds[0], mmapSize: sizes[0])
        #expect((0..<300).allSatisfy { view.load(fromByteOffset: Int(specs[0].dataOffset) + $0, as: UInt8.self) == bytes[$0] })
        // Node 0 sees node 1's Plasma reference: the object cannot be deleted.
        #expect(try cluster.client(0).delete([x]).first??.description.contains("in use") == true)
        p.send(.release(x))
        #expect(cluster.eventually { (try? cluster.client(0).delete([x]).first) == .some(nil) })
    }
}
