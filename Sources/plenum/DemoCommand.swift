import ArgumentParser
import Foundation
import PlenumBench
import PlenumMemory
import PlenumClient
import PlenumRegion
import PlenumStore

/// The embedded default: a region in /dev/shm, two processes exchanging
/// messages through a pair of rings, a summary at the end.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Two processes exchange messages through rings in a /dev/shm region, with flushes on; prints a summary.")
    @Option(help: "Messages each way.") var count: UInt64 = 200_000
    @Option(help: "Region file.") var region = "/dev/shm/plenum-demo.region"
    @Option var lineSize = LineSize.default
    @Option var slots = 256
    @Option var slotSize = 256
    @Flag(help: "Keep the region file afterwards.") var keep = false
    @Option(help: "Objects the store part puts and gets back.") var objects = 2000
    @Flag var json = false

    func run() throws {
        let r = try PlenumBench.Exchange.prepare(path: region, slots: slots, slotSize: slotSize, lineSize: lineSize)
        defer { if !keep { unlink(region) } }
        if !json {
            print("region \(region): \(r.size) bytes, line size \(lineSize); rings a-to-b and b-to-a, \(slots) slots × \(slotSize) B")
            print("CPU: \(CPU.flushInstruction), hardware line \(CPU.hardwareLineSize) B; \(count) messages each way, flushes on")
        }
        let started = monotonicNanos()
        let children = try ["a", "b"].map { role in
            try Peer.Child(arguments: ["ring", "exchange", region, "--role", role, "--count", "\(count)", "--json"])
        }
        var reports: [PlenumBench.Exchange.Report] = []
        var failed = false
        for (role, child) in zip(["a", "b"], children) {
            let (status, output) = child.wait()
            let d = JSONDecoder(); d.keyDecodingStrategy = .convertFromSnakeCase
            if let line = output.split(separator: "\n").last, let rep = try? d.decode(PlenumBench.Exchange.Report.self, from: Data(line.utf8)) {
                reports.append(rep)
            } else {
                FileHandleStderr.write("process \(role) failed (exit \(status)): \(output)\n")
                failed = true
            }
            if status != 0 { failed = true }
        }
        let seconds = Double(monotonicNanos() - started) / 1e9
        if json {
            let e = JSONEncoder(); e.keyEncodingStrategy = .convertToSnakeCase; e.outputFormatting = [.sortedKeys]
            print(String(decoding: try e.encode(reports), as: UTF8.self))
        } else {
            for rep in reports {
                print("process \(rep.role.rawValue): sent \(rep.sent), received \(rep.check.received), lost \(rep.check.lost), duplicated \(rep.check.duplicated), reordered \(rep.check.reordered), corrupt \(rep.check.corrupt + rep.ringCorrupt), ring full \(rep.fullRetries)×, \(String(format: "%.2f", rep.seconds)) s")
            }
            let total = reports.reduce(0) { $0 + $1.check.received }
            print(String(format: "%llu messages delivered in %.2f s wall (%.0f msgs/s both ways, including process start)", total, seconds, Double(total) / seconds))
            print(failed ? "FAILED" : "OK: every message arrived once, in order, intact")
        }
        if failed { throw ExitCode(1) }
        if objects > 0 { try storeDemo() }
    }

    /// Starts a store daemon, puts and gets objects through the client
    /// library (zero-copy in its /dev/shm region), prints a summary, stops it.
    func storeDemo() throws {
        let socket = "/tmp/plenum-demo-\(getpid()).sock"
        let daemon = try Peer.Child(arguments: ["store", "--socket", socket, "--memory", "256M"])
        defer { daemon.kill(); _ = daemon.wait() }
        let deadline = monotonicNanos() + 20_000_000_000
        var client: PlenumClient?
        while client == nil {
            client = try? PlenumClient(socketPath: socket)
            if client == nil {
                guard monotonicNanos() < deadline else { throw CLIError("the store did not start on \(socket)") }
                usleep(20_000)
            }
        }
        let c = client!
        let started = monotonicNanos()
        var bytes = 0, mismatches = 0
        for i in 0..<objects {
            var idBytes = [UInt8](repeating: 0xD0, count: 20)
            withUnsafeBytes(of: UInt32(i).bigEndian) { for k in 0..<4 { idBytes[16 + k] = $0[k] } }
            let id = ObjectID(bytes: idBytes)!
            let size = 1 + (i * 7919) % 65536
            let data = (0..<size).map { UInt8(truncatingIfNeeded: $0 &+ i) }
            try c.put(id, data: data)
            guard let b = try c.get([id], timeoutMs: 0).first ?? nil else { mismatches += 1; continue }
            if try b.data != data { mismatches += 1 }
            try c.release(b)
            bytes += size
        }
        let stats = try c.stats()
        let listed = try c.list().count
        let seconds = Double(monotonicNanos() - started) / 1e9
        if json {
            print(#"{"store":{"objects":\#(objects),"bytes":\#(bytes),"mismatches":\#(mismatches),"listed":\#(listed),"used":\#(stats.used),"seconds":\#(seconds)}}"#)
        } else {
            print("store: put and got back \(objects) objects (\(bytes) bytes) through `plenum store` in \(String(format: "%.2f", seconds)) s; \(mismatches) mismatches; \(listed) listed, \(stats.used) bytes in use of \(stats.capacity)")
            print(mismatches == 0 ? "OK: every object read back byte for byte, zero-copy from the store's region" : "FAILED")
        }
        if mismatches > 0 { throw ExitCode(1) }
    }
}
