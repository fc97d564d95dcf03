import ArgumentParser
import Foundation
import PlenumBench
import PlenumMemory
import PlenumRegion

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
    }
}
