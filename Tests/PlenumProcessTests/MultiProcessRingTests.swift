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
        #expect(drain.status == 0, "\(drain.stderr)")
        let doc = try #require(PlenumProcess.json(drain.stdout))
        #expect(doc["received"] as? Int == 8)
        #expect(doc["ring_corrupt"] as? Int == 2)
        #expect(doc["payload_mismatch"] as? Int == 0, "nothing corrupt was delivered")
        #expect(doc["lost"] as? Int == 2)
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
        #expect(PlenumProcess.json(drain.stdout)?["received"] as? Int == 8)
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

    @Test func demoRunsEndToEnd() throws {
        let path = tempPath("demo")
        let r = try PlenumProcess.run(["demo", "--count", "20000", "--region", path, "--objects", "200"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("OK: every message arrived once, in order, intact"))
        #expect(r.stdout.contains("OK: every object read back byte for byte"))
        #expect(access(path, F_OK) != 0, "the demo removes its region")
    }
}
