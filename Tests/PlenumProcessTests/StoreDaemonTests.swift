import Foundation
import PlenumClient
import PlenumStore
import PlenumWire
import Testing

/// A real `plenum store` process on a temporary socket, stopped at the end.
final class RunningStore {
    let socket: String
    let process: PlenumProcess.Running

    init(memory: String = "64M", tag: String = #function) throws {
        socket = "/tmp/plenum-test-\(getpid())-\(tag.filter { $0.isLetter }.prefix(20)).sock"
        process = try PlenumProcess.Running(["store", "--socket", socket, "--memory", memory])
        // Ready when a client connects (the socket file exists before the
        // store listens); a socket-only probe, so it holds no ring pair.
        let p = process.process, path = socket
        guard eventually(120, { !p.isRunning || (try? PlenumClient(socketPath: path, rings: false)) != nil }), p.isRunning else {
            throw CocoaError(.fileNoSuchFile)
        }
    }

    func client(rings: Bool = true) throws -> PlenumClient { try PlenumClient(socketPath: socket, rings: rings) }

    /// SIGTERM; the daemon must exit cleanly and remove its socket.
    func stop() -> Int32 {
        process.process.terminate()
        let r = process.finish(timeout: 30)
        return r.status
    }
}

@Suite(.serialized) struct StoreDaemonTests {
    @Test func putGetByteForByteAndCleanShutdown() throws {
        let store = try RunningStore()
        var st = stat()
        #expect(stat(store.socket, &st) == 0 && st.st_mode & 0o777 == 0o600, "socket is private")
        let c = try store.client()
        let id = ObjectID(hex: String(repeating: "ab", count: 20))!
        let data = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try c.put(id, data: data, metadata: [9, 9])
        #expect(try c.contains(id))
        let b = try #require(try c.get([id], timeoutMs: 0).first ?? nil)
        #expect(try b.data == data)
        #expect(try b.withMetadata { Array($0) } == [9, 9])
        try c.release(b)
        #expect(throws: ClientError.self) { try b.data }
        let rows = try c.list()
        #expect(rows.count == 1 && rows[0].location.dataSize == 300_000 && rows[0].refCount == 0 && rows[0].digest != nil)
        #expect(try c.delete([id]) == [nil])
        #expect(try c.stats().used == 0)
        #expect(store.stop() == 0)
        #expect(access(store.socket, F_OK) != 0, "socket removed on SIGTERM")
    }

    @Test func createAndSealCarriesSmallObjectsInOneRoundTrip() throws {
        let store = try RunningStore()
        let c = try store.client()
        try c.subscribe()
        let a = ObjectID(hex: String(repeating: "a1", count: 20))!, b = ObjectID(hex: String(repeating: "b2", count: 20))!
        let results = try c.createAndSeal([.init(id: a, data: Array("alpha".utf8), metadata: [1]), .init(id: b, data: Array("beta".utf8)),
                                           .init(id: a, data: [0])])
        #expect(results.count == 3 && results[0] == nil && results[1] == nil)
        #expect(results[2]?.description.contains("already exists") == true)
        let got = try c.get([a, b], timeoutMs: 0)
        #expect(try got[0]?.data == Array("alpha".utf8))
        #expect(try got[0]?.withMetadata { Array($0) } == [1])
        #expect(try got[1]?.data == Array("beta".utf8))
        #expect(try c.nextNotification() == .sealed(a, got[0]!.location))
        try c.refresh([a, b])
        #expect(try c.list().allSatisfy { $0.digest != nil })
        #expect(store.stop() == 0)
    }

    @Test func sharedMemoryRingsCarryRequestsAndReplies() throws {
        let store = try RunningStore()
        let c = try store.client()
        try c.useRings()
        #expect(c.usesRings)
        let watcher = try store.client()
        try watcher.useRings()
        try watcher.subscribe()
        var ids: [ObjectID] = []
        for i in 0..<300 {
            let id = ObjectID(bytes: [UInt8](repeating: UInt8(i % 256), count: 19) + [UInt8(i / 256)])!
            ids.append(id)
            try c.put(id, data: (0..<(i * 13 + 1)).map { UInt8(truncatingIfNeeded: $0 + i) })
        }
        for (i, id) in ids.enumerated() {
            let b = try #require(try c.get([id], timeoutMs: 0).first ?? nil)
            #expect(try b.data == (0..<(i * 13 + 1)).map { UInt8(truncatingIfNeeded: $0 + i) })
            try c.release(b)
        }
        // A reply too large for a ring slot comes by the socket.
        #expect(try c.list().count == 300)
        // The watcher's notifications arrive by its reply ring.
        #expect(try watcher.nextNotification() == .sealed(ids[0], try c.list().first { $0.id == ids[0] }!.location))
        // Idle past the store's spin window: the doorbell wakes it.
        usleep(300_000)
        #expect(try c.contains(ids[1]))
        #expect(try c.createAndSeal([.init(id: ObjectID(hex: String(repeating: "ee", count: 20))!, data: [1, 2, 3])]) == [nil])
        #expect(try c.delete(ids).allSatisfy { $0 == nil })
        #expect(try c.stats().objects == 1)
        #expect(store.stop() == 0)
    }

    @Test func ringPairsRunOutWithAClearErrorAndAreReused() throws {
        let store = try RunningStore()
        var clients: [PlenumClient] = []
        for _ in 0..<32 {
            let c = try store.client()
            try c.useRings()
            clients.append(c)
        }
        let extra = try store.client()
        #expect(throws: ClientError.self) { try extra.useRings() }
        #expect(try extra.contains(ObjectID(hex: String(repeating: "05", count: 20))!) == false, "still served by socket")
        // A pair freed by a disconnect is formatted afresh for the next client.
        clients.removeLast()
        #expect(eventually { (try? extra.stats().clients) == 32 }, "the store saw the disconnect")
        let next = try store.client()
        try next.useRings()
        try next.put(ObjectID(hex: String(repeating: "06", count: 20))!, data: [6])
        #expect(try next.contains(ObjectID(hex: String(repeating: "06", count: 20))!))
        #expect(store.stop() == 0)
    }

    @Test func storeBenchmarkMeasuresEveryRowOnBothPathsAndLeavesTheStoreEmpty() throws {
        let store = try RunningStore(memory: "256M")
        let r = try PlenumProcess.run(["bench", "store", "--socket", store.socket, "--json", "--scale", "100", "--repeats", "1",
                                       "--operations", "100", "--clients", "2"], timeout: 300)
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try #require(PlenumProcess.json(r.stdout), "printed: \(r.stdout)")
        let rows = try #require(doc["rows"] as? [[String: Any]])
        var values: [String: Double] = [:]
        for row in rows { values[row["name"] as? String ?? "?"] = row["plenum"] as? Double ?? (row["plenum"] as? Int).map(Double.init) }
        var expected = ["unix socket 64B round trip (floor)"]
        for path in ["", ", socket"] {
            for label in ["1000x1kB", "500x10kB", "200x100kB", "100x1MB", "50x10MB", "10x100MB"] {
                expected += ["create+write+seal \(label) (per object)\(path)", "get all \(label)\(path)", "read \(label)\(path)"]
            }
            expected += ["create-and-seal 1000x1kB (per object)\(path)", "get+release 64B\(path)", "contains\(path)",
                         "get+release 64B, 2 clients\(path)"]
        }
        #expect(Set(values.keys) == Set(expected), "rows: \(values.keys.sorted())")
        for (name, v) in values { #expect(v.isFinite && v > 0, "\(name) = \(v)") }
        let s = try store.client().stats()
        #expect(s.used == 0 && s.objects == 0, "the benchmark deletes what it creates")
        // A row filter that matches nothing is refused, not an empty table.
        let none = try PlenumProcess.run(["bench", "store", "--socket", store.socket, "--only", "zzz"], timeout: 60)
        #expect(none.status != 0 && none.stderr.contains("matches no row"), "\(none.stderr)")
        #expect(store.stop() == 0)
    }

    @Test func eightClientProcessesTenThousandOperationsEach() throws {
        let store = try RunningStore()
        let clients = try (1...8).map { n in
            // Half of them talk through shared-memory rings, half through the socket.
            try PlenumProcess.Running(["_client-workload", "--socket", store.socket, "--client", "\(n)", "--operations", "10000"]
                                      + (n % 2 == 0 ? ["--rings"] : []))
        }
        for (n, p) in clients.enumerated() {
            let r = p.finish(timeout: 400)
            #expect(r.status == 0, "client \(n + 1): \(r.stderr)")
            let doc = try #require(PlenumProcess.json(r.stdout), "client \(n + 1) printed: \(r.stdout) \(r.stderr)")
            #expect((doc["operations"] as? Int ?? 0) >= 10_000)
            #expect(doc["mismatches"] as? Int == 0, "every byte checked")
        }
        let s = try store.client().stats()
        #expect(s.used == 0 && s.objects == 0, "nothing leaked")
        #expect(store.stop() == 0)
    }

    @Test func malformedTruncatedAndHugeRequestsGetErrorsAndTheStoreServesOn() throws {
        let store = try RunningStore()
        let c = try store.client()
        // Unknown type: an error reply, connection stays usable.
        var bad = Wire.encode(.list, requestId: 77)
        bad[4] = 0x70
        try c.send(bad)
        guard case .reply(77, .failure(let e)) = try c.receive() else { Issue.record("no error reply"); return }
        #expect(e.storeCode == .unknownType)
        // Truncated body with a consistent length: malformed, still usable.
        var short = Array(Wire.encode(.create(ObjectID(hex: String(repeating: "01", count: 20))!, dataSize: 1, metadataSize: 0), requestId: 78)[0..<30])
        short[0] = 30
        try c.send(short)
        guard case .reply(78, .failure(let e2)) = try c.receive() else { Issue.record("no error reply"); return }
        #expect(e2.storeCode == .malformedFrame)
        // Huge sizes.
        #expect(throws: ClientError.self) { _ = try c.create(ObjectID(hex: String(repeating: "02", count: 20))!, dataSize: 1 << 50) }
        #expect(try c.contains(ObjectID(hex: String(repeating: "03", count: 20))!) == false)
        // An impossible length: error, then this connection is closed.
        let evil = try store.client()
        try evil.send([0xFF, 0xFF, 0xFF, 0x7F] + [UInt8](repeating: 0, count: 12))
        guard case .reply(_, .failure(let e3)) = try evil.receive() else { Issue.record("no error reply"); return }
        #expect(e3.storeCode == .frameTooLarge)
        #expect(throws: ClientError.self) { _ = try evil.receive() }
        // Request id 0 is reserved.
        var zero = Wire.encode(.stats, requestId: 0)
        zero[8] = 0
        try c.send(zero)
        guard case .reply(0, .failure(let e4)) = try c.receive() else { Issue.record("no error reply"); return }
        #expect(e4.storeCode == .malformedFrame && e4.message.contains("reserved"))
        // A valid request and an impossible length in one write: the reply,
        // then the error, then the close.
        let both = try store.client(rings: false)   // the socket's own order
        try both.send(Wire.encode(.contains(ObjectID(hex: String(repeating: "04", count: 20))!), requestId: 5) + [0xFF, 0xFF, 0xFF, 0x7F])
        guard case .reply(5, .success(.contains(false))) = try both.receive() else { Issue.record("no reply before the error"); return }
        guard case .reply(_, .failure(let e5)) = try both.receive() else { Issue.record("error lost"); return }
        #expect(e5.storeCode == .frameTooLarge)
        #expect(throws: ClientError.self) { _ = try both.receive() }
        // Others are still served.
        #expect(try store.client().stats().clients >= 1)
        #expect(store.stop() == 0)
    }

    @Test func aReplyTooLargeForAFrameIsAnErrorNotABrokenStream() throws {
        let store = try RunningStore()
        let c = try store.client()
        var n: UInt32 = 0
        for _ in 0..<4 {
            let batch = (0..<4096).map { _ -> Wire.InlineObject in
                n += 1
                var b = [UInt8](repeating: 0x77, count: 20)
                withUnsafeBytes(of: n.bigEndian) { for i in 0..<4 { b[16 + i] = $0[i] } }
                return .init(id: ObjectID(bytes: b)!, data: [1])
            }
            #expect(try c.createAndSeal(batch).allSatisfy { $0 == nil })
        }
        #expect(try c.stats().objects == 16_384)
        #expect(throws: ClientError.self) { _ = try c.list() }
        #expect(try c.contains(ObjectID(bytes: [UInt8](repeating: 0x77, count: 16) + [0, 0, 0, 1])!), "the stream is intact")
        #expect(store.stop() == 0)
    }

    @Test func clientKilledMidCreateHasItsMemoryReclaimed() throws {
        let store = try RunningStore()
        let victim = try PlenumProcess.Running(["_client-workload", "--socket", store.socket, "--client", "5", "--hang"])
        let c = try store.client()
        let deadline = Date().addingTimeInterval(120)
        while try c.stats().used == 0 && Date() < deadline { usleep(20_000) }
        #expect(try c.stats().used >= 1 << 20, "the victim's unsealed object holds memory")
        kill(victim.process.processIdentifier, SIGKILL)
        _ = victim.finish(timeout: 10)
        while try c.stats().used != 0 && Date() < deadline { usleep(20_000) }
        let s = try c.stats()
        #expect(s.used == 0 && s.objects == 0, "aborted and freed when the client died")
        #expect(store.stop() == 0)
    }

    @Test func getTimesOutAndBlockingGetIsWokenBySeal() throws {
        let store = try RunningStore()
        let c = try store.client()
        let id = ObjectID(hex: String(repeating: "cd", count: 20))!
        let t0 = Date()
        #expect(try c.get([id], timeoutMs: 150).first! == nil)
        #expect(Date().timeIntervalSince(t0) >= 0.14, "waited for the timeout")
        // A blocking get in another process, woken by our seal.
        let out = "/tmp/plenum-test-\(getpid())-blocking.out"
        defer { unlink(out) }
        let waiter = try PlenumProcess.Running(["get", id.hex, "--socket", store.socket, "--timeout-ms=-1", "-o", out])
        #expect(eventually { (try? c.stats().clients) == 2 }, "the waiter connected")
        #expect(waiter.process.isRunning, "still blocked: nothing sealed yet")
        try c.put(id, data: Array("woken".utf8))
        let r = waiter.finish(timeout: 30)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(FileManager.default.contents(atPath: out) == Data("woken".utf8))
        #expect(store.stop() == 0)
    }
}

/// SPEC §9.1 `--name`, written out bit by bit: word i is the CRC32C
/// (Castagnoli, reflected, polynomial 0x82F63B78) of the name continued from
/// the value i·0x9E3779B9 — register ¬value, result ¬register — stored
/// big-endian at bytes 4i…4i+3.
@Suite struct NameHashTests {
    static func crc32c(_ bytes: [UInt8], from value: UInt32) -> UInt32 {
        var r = ~value
        for b in bytes {
            r ^= UInt32(b)
            for _ in 0..<8 { r = r & 1 == 1 ? (r >> 1) ^ 0x82F6_3B78 : r >> 1 }
        }
        return ~r
    }

    static func id(_ name: String) -> String {
        (0..<5).map { i -> String in
            let w = crc32c(Array(name.utf8), from: UInt32(i) &* 0x9E37_79B9)
            let hex = String(w, radix: 16)
            return String(repeating: "0", count: 8 - hex.count) + hex
        }.joined()
    }

    @Test func aNameHashesToTheIdTheSpecDefines() throws {
        #expect(Self.id("foo").hasPrefix("cfc4ae1d"), "word 0 is the plain CRC32C of the name")
        let store = try RunningStore()
        let file = "/tmp/plenum-test-\(getpid())-name.txt"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        defer { unlink(file) }
        for name in ["foo", "", "a longer name, with ünïcode"] {
            let r = try PlenumProcess.run(["put", "--name", name, file, "--socket", store.socket])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == Self.id(name), "name \"\(name)\"")
        }
        #expect(store.stop() == 0)
    }
}
