import Foundation
import PlenumBench
import PlenumMemory
import PlenumRegion
import PlenumRing
import Testing

@Suite(.serialized) struct MultiProcessRingTests {
    func tempPath(_ tag: String) -> String { "/dev/shm/plenum-ptest-\(getpid())-\(tag)" }

    /// Two OS processes map one /dev/shm region and exchange 1,000,000
    /// messages each way with flushes on; each checks every id and byte.
    @Test func twoProcessesExchangeAMillionMessagesEachWay() throws {
        let path = tempPath("exchange")
        defer { unlink(path) }
        _ = try Exchange.prepare(path: path, slots: 256, slotSize: 256, lineSize: .default)
        let count = 1_000_000
        let a = try PlenumProcess.Running(["ring", "exchange", path, "--role", "a", "--count", "\(count)", "--json", "--timeout-seconds", "400"])
        let b = try PlenumProcess.Running(["ring", "exchange", path, "--role", "b", "--count", "\(count)", "--json", "--timeout-seconds", "400"])
        for (name, p) in [("a", a), ("b", b)] {
            let r = p.finish(timeout: 450)
            #expect(r.status == 0, "process \(name): \(r.stderr)")
            let doc = try #require(PlenumProcess.json(r.stdout), "process \(name) printed no report: \(r.stdout) \(r.stderr)")
            let check = try #require(doc["check"] as? [String: Any])
            #expect(doc["sent"] as? Int == count)
            #expect(doc["flushes"] as? Bool == true)
            #expect(check["received"] as? Int == count, "no loss")
            #expect(check["lost"] as? Int == 0)
            #expect(check["duplicated"] as? Int == 0, "no duplication")
            #expect(check["reordered"] as? Int == 0, "no reordering")
            #expect(check["corrupt"] as? Int == 0, "every payload byte intact")
            #expect(doc["ring_corrupt"] as? Int == 0)
            #expect(check["next_expected"] as? Int == count)
        }
    }

    /// A third process damages slots between the producer and the consumer:
    /// the consumer reports and skips exactly those, delivering the rest.
    @Test func slotCorruptedByAThirdProcessIsDetectedAndNotDelivered() throws {
        let path = tempPath("corrupt")
        defer { unlink(path) }
        let region = try Region.create(at: path, size: 1 << 20)
        try Ring.create(in: region, name: "r", slotCount: 16, slotSize: 256, producer: 0, consumer: 1)
        let post = try PlenumProcess.run(["ring", "post", path, "--name", "r", "--count", "10", "--json"])
        #expect(post.status == 0, "\(post.stderr)")
        #expect(PlenumProcess.json(post.stdout)?["posted"] as? Int == 10)
        // Message id 3 is sequence 4: a payload byte; id 6 is sequence 7: its length field.
        let c1 = try PlenumProcess.run(["ring", "corrupt", path, "--name", "r", "--sequence", "4", "--byte", "40"])
        let c2 = try PlenumProcess.run(["ring", "corrupt", path, "--name", "r", "--sequence", "7", "--byte", "\(RingLayout.sLength + 3)"])
        #expect(c1.status == 0 && c2.status == 0, "\(c1.stderr) \(c2.stderr)")
        let drain = try PlenumProcess.run(["ring", "drain", path, "--name", "r", "--count", "10", "--timeout-ms", "500", "--json"])
        // Corrupt slots (and the two ids they carried) make the drain fail: 2 (SPEC §6).
        #expect(drain.status == 2, "\(drain.stdout) \(drain.stderr)")
        #expect(drain.stderr.contains("delivery check failed"), "\(drain.stderr)")
        #expect(drain.stderr.contains("received 8 of 10"), "\(drain.stderr)")
        let doc = try #require(PlenumProcess.json(drain.stdout))
        #expect(doc["received"] as? Int == 8)
        #expect(doc["requested"] as? Int == 10)
        #expect(doc["ring_corrupt"] as? Int == 2)
        #expect(doc["payload_mismatch"] as? Int == 0, "nothing corrupt was delivered")
        #expect(doc["lost"] as? Int == 2)
        #expect(doc["reordered"] as? Int == 0, "a gap is counted once, as lost")
        #expect(doc["duplicated"] as? Int == 0)
        #expect(doc["exit_status"] as? Int == 2)
        let why = try #require(doc["corruptions"] as? [String])
        #expect(why.count == 2)
        #expect(why[0].contains("message 4 fails its CRC32C"))
        #expect(why[1].contains("message 7 declares"))
    }

    @Test func fullRingStopsThePosterWithAClearCount() throws {
        let path = tempPath("full")
        defer { unlink(path) }
        let region = try Region.create(at: path, size: 1 << 20)
        try Ring.create(in: region, name: "r", slotCount: 8, slotSize: 128, producer: 0, consumer: 1)
        let post = try PlenumProcess.run(["ring", "post", path, "--name", "r", "--count", "20", "--json"])
        let doc = try #require(PlenumProcess.json(post.stdout))
        #expect(doc["posted"] as? Int == 8)
        #expect(doc["full"] as? Bool == true)
        // The consumer process gets exactly the 8 committed messages.
        let drain = try PlenumProcess.run(["ring", "drain", path, "--name", "r", "--count", "8", "--json"])
        #expect(drain.status == 0, "\(drain.stderr)")
        #expect(PlenumProcess.json(drain.stdout)?["received"] as? Int == 8)
    }

    /// `ring drain` exits 3 when fewer messages than asked arrive before its
    /// timeout, saying so on stderr; its counts show nothing was damaged.
    @Test func drainAskingForMoreThanWasPostedExitsNonZero() throws {
        let path = tempPath("short")
        defer { unlink(path) }
        let region = try Region.create(at: path, size: 1 << 20)
        try Ring.create(in: region, name: "r", slotCount: 16, slotSize: 256, producer: 0, consumer: 1)
        let post = try PlenumProcess.run(["ring", "post", path, "--name", "r", "--count", "5", "--json"])
        #expect(post.status == 0, "\(post.stderr)")
        #expect(PlenumProcess.json(post.stdout)?["posted"] as? Int == 5)
        let drain = try PlenumProcess.run(["ring", "drain", path, "--name", "r", "--count", "8", "--timeout-ms", "300", "--json"])
        #expect(drain.status == 3, "\(drain.stdout) \(drain.stderr)")
        #expect(drain.stderr.contains("received 5 of 8 messages within 300 ms"), "\(drain.stderr)")
        #expect(!drain.stderr.contains("delivery check failed"), "\(drain.stderr)")
        let doc = try #require(PlenumProcess.json(drain.stdout), "\(drain.stdout) \(drain.stderr)")
        #expect(doc["received"] as? Int == 5)
        #expect(doc["requested"] as? Int == 8)
        #expect(doc["next_expected"] as? Int == 5)
        #expect(doc["lost"] as? Int == 0)
        #expect(doc["duplicated"] as? Int == 0)
        #expect(doc["reordered"] as? Int == 0)
        #expect(doc["payload_mismatch"] as? Int == 0)
        #expect(doc["ring_corrupt"] as? Int == 0)
        #expect(doc["exit_status"] as? Int == 3)
        // Text mode: the same status; the summary goes to stdout.
        let again = try PlenumProcess.run(["ring", "drain", path, "--name", "r", "--count", "1", "--timeout-ms", "100"])
        #expect(again.status == 3, "\(again.stdout) \(again.stderr)")
        #expect(again.stdout.contains("received 0 of 1"), "\(again.stdout)")
    }

    /// `ring drain` exits 0 when every message asked for arrived in order and
    /// intact; 2 when ids repeat (two `ring post` runs both send ids 0, 1, …).
    @Test func drainExitsZeroWhenEverythingArrivedAndTwoOnDuplicates() throws {
        let path = tempPath("whole")
        defer { unlink(path) }
        let region = try Region.create(at: path, size: 1 << 20)
        try Ring.create(in: region, name: "r", slotCount: 16, slotSize: 256, producer: 0, consumer: 1)
        let post = try PlenumProcess.run(["ring", "post", path, "--name", "r", "--count", "12", "--json"])
        #expect(post.status == 0, "\(post.stderr)")
        let drain = try PlenumProcess.run(["ring", "drain", path, "--name", "r", "--count", "12", "--timeout-ms", "5000", "--json"])
        #expect(drain.status == 0, "\(drain.stdout) \(drain.stderr)")
        #expect(drain.stderr.isEmpty, "\(drain.stderr)")
        let doc = try #require(PlenumProcess.json(drain.stdout), "\(drain.stdout) \(drain.stderr)")
        #expect(doc["received"] as? Int == 12)
        #expect(doc["next_expected"] as? Int == 12)
        #expect(doc["lost"] as? Int == 0)
        #expect(doc["reordered"] as? Int == 0)
        #expect(doc["payload_mismatch"] as? Int == 0)
        #expect(doc["ring_corrupt"] as? Int == 0)
        #expect(doc["exit_status"] as? Int == 0)
        // Two post runs: ids 0..<4 twice; the drain sees the second four as duplicates.
        for _ in 0..<2 {
            let p = try PlenumProcess.run(["ring", "post", path, "--name", "r", "--count", "4", "--json"])
            #expect(PlenumProcess.json(p.stdout)?["posted"] as? Int == 4, "\(p.stdout) \(p.stderr)")
        }
        let dup = try PlenumProcess.run(["ring", "drain", path, "--name", "r", "--count", "8", "--timeout-ms", "5000", "--json"])
        #expect(dup.status == 2, "\(dup.stdout) \(dup.stderr)")
        let d = try #require(PlenumProcess.json(dup.stdout), "\(dup.stdout) \(dup.stderr)")
        #expect(d["received"] as? Int == 8)
        #expect(d["duplicated"] as? Int == 4)
        #expect(d["lost"] as? Int == 0)
        #expect(d["reordered"] as? Int == 0)
        #expect(d["exit_status"] as? Int == 2)
    }

    /// The worked values of SPEC §5.1 (CRC32C, slot checksum) and §6 (the
    /// `ring post` payload pattern), and the delivery classes of `ring drain`.
    @Test func specVectorsForCRCPatternAndDeliveryCheck() throws {
        func crc(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 { bytes.withUnsafeBytes { CRC32C.checksum($0, seed: seed) } }
        #expect(crc(Array("123456789".utf8)) == 0xE306_9283)
        #expect(crc([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(crc(Array("world".utf8), seed: crc(Array("hello ".utf8))) == crc(Array("hello world".utf8)))
        let pattern = MessagePattern(stream: 1, maxLength: 224)
        #expect((UInt64(0)..<4).map { pattern.length(of: $0) } == [140, 110, 220, 157])
        #expect((UInt64(0)..<4).map { MessagePattern(stream: 1, maxLength: 96).length(of: $0) } == [27, 75, 66, 38])
        #expect((UInt64(0)..<4).map { MessagePattern(stream: 0xA, maxLength: 224).length(of: $0) } == [91, 193, 152, 96])
        func payload(_ p: MessagePattern, _ index: UInt64, _ count: Int) -> [UInt8] {
            var out = [UInt8](repeating: 0, count: count)
            out.withUnsafeMutableBytes { p.fill($0, index: index) }
            return out
        }
        let hex: ([UInt8]) -> String = { $0.map { String(format: "%02x", $0) }.joined() }
        #expect(hex(payload(pattern, 0, 16)) == "1e61397408ab415ec3868d6df4028ab1")
        #expect(hex(payload(pattern, 1, 16)) == "b484d70f4f4c686495ec75a2d1ec5619")
        #expect(hex(payload(MessagePattern(stream: 0xA, maxLength: 224), 0, 16)) == "cf68fb6cf157e717dd7db783f35b8d92")
        // Slot of message 0 (sequence 1, epoch 1, kind 1, flags 0, request id 0).
        let body = payload(pattern, 0, 140)
        #expect(body.withUnsafeBytes { pattern.matches($0, index: 0) })
        var header = [UInt8](repeating: 0, count: 32)
        header[0] = 1; header[8] = 1; header[12] = 1; header[16] = 140
        #expect(crc(Array(header[24..<32]) + body, seed: crc(Array(header[0..<20]))) == 0x2B58_69C5)
        // Delivery classes: each id counted once.
        var check = DeliveryCheck()
        for id: UInt64 in [0, 1, 3] { check.observe(id: id, intact: true) }
        #expect(check.lost == 1 && check.reordered == 0 && check.nextExpected == 4)
        check.observe(id: 2, intact: true)
        #expect(check.lost == 0 && check.reordered == 1 && check.duplicated == 0)
        check.observe(id: 2, intact: true)
        #expect(check.duplicated == 1 && check.reordered == 1)
        check.observe(id: 7, intact: true)
        #expect(check.lost == 3 && check.reordered == 1)
        for id: UInt64 in [5, 4, 6] { check.observe(id: id, intact: true) }
        #expect(check.lost == 0 && check.reordered == 4 && check.duplicated == 1)
        check.observe(id: 8, intact: false)
        #expect(check.corrupt == 1 && check.received == 10 && check.nextExpected == 9)
    }

    @Test func badInputGivesAClearErrorAndNonZeroExit() throws {
        let missing = try PlenumProcess.run(["region", "info", tempPath("missing")])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("No such file or directory"))
        let path = tempPath("junk")
        defer { unlink(path) }
        FileManager.default.createFile(atPath: path, contents: Data(repeating: 0xAB, count: 8192))
        let junk = try PlenumProcess.run(["region", "info", path])
        #expect(junk.status != 0)
        #expect(junk.stderr.contains("is not a Plenum region"))
        let badLine = try PlenumProcess.run(["region", "create", path + "x", "--size", "1M", "--line-size", "96"])
        #expect(badLine.status != 0)
        #expect(access(path + "x", F_OK) != 0)
    }

    @Test func flushWritesBackWithCLWBWhereTheCPUHasItAndInvalidateNeverDoes() throws {
        let path = tempPath("flushkind")
        defer { unlink(path) }
        #expect(try PlenumProcess.run(["region", "create", path, "--size", "1M"]).status == 0)
        func instructions(_ env: [String: String]) throws -> String {
            let r = try PlenumProcess.run(["region", "info", path], environment: env)
            #expect(r.status == 0, "\(r.stderr)")
            let line = try #require(r.stdout.split(separator: "\n").first { $0.contains("CPU flush: ") })
            return String(line[line.range(of: "CPU flush: ")!.upperBound...])
        }
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let hasCLWB = cpuinfo.split(separator: "\n").contains { $0.hasPrefix("flags") && $0.split(separator: " ").contains("clwb") }
        let normal = try instructions([:])
        // SPEC §3.3: an invalidate must drop the line; CLWB may keep it.
        #expect(!normal.contains("invalidate clwb"), "\(normal)")
        #if arch(x86_64)
        #expect(normal.hasPrefix("clwb+sfence") == hasCLWB, "\(normal); cpu has clwb: \(hasCLWB)")
        #endif
        // PLENUM_FLUSH=clflushopt: flush uses the invalidating instruction (SPEC §3.2).
        let forced = try instructions(["PLENUM_FLUSH": "clflushopt"])
        #expect(!forced.contains("clwb") && !forced.contains("invalidate"), "\(forced)")
    }

    @Test func demoRunsEndToEnd() throws {
        let path = tempPath("demo")
        let r = try PlenumProcess.run(["demo", "--count", "20000", "--region", path, "--objects", "200"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("OK: every message arrived once, in order, intact"))
        #expect(r.stdout.contains("OK: every object read back byte for byte"))
        #expect(access(path, F_OK) != 0, "the demo removes its region")
    }
}
