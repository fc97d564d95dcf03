import ArgumentParser
import Foundation
import PlenumBench
import PlenumMemory
import PlenumRegion

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks (not tests): each measures Plenum beside its baseline in one run.",
        subcommands: [RingBench.self, StoreBench.self, StoreBenchClient.self, ClusterBench.self, TransportBench.self, WaitingBench.self, CoreBench.self, BenchPeer.self, SocketEcho.self, TCPEcho.self])

    struct RingBench: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ring",
            abstract: "Ring round trip and throughput against the bare cache-line ping-pong floor, two pinned processes.")
        @Option(help: "Round trips per series per round.") var messages = 100_000
        @Option(help: "Messages per throughput round.") var throughputMessages = 1_000_000
        @Option(help: "Rounds; every series runs once per round, interleaved.") var rounds = 3
        @Option var lineSize = LineSize.default
        @Option(help: "CPUs for the two processes, e.g. 0,1; 'none' to not pin.") var cpus = "0,1"
        @Option(help: "Directory for the benchmark region.") var directory = "/dev/shm"
        @Flag var json = false
        @OptionGroup var log: LogOptions

        func run() throws {
            let logger = log.bootstrap()
            var o = RingBenchmark.Options()
            o.messages = messages
            o.throughputMessages = throughputMessages
            o.rounds = rounds
            o.lineSize = lineSize
            o.directory = directory
            if cpus == "none" { o.cpus = nil } else {
                let parts = cpus.split(separator: ",").compactMap { Int($0) }
                guard parts.count == 2, parts[0] != parts[1] else { throw ValidationError("--cpus takes two different CPU numbers, e.g. 0,1, or 'none'") }
                o.cpus = (parts[0], parts[1])
            }
            guard messages > 0, throughputMessages > 0, rounds > 0 else { throw ValidationError("counts must be positive") }
            let report = try RingBenchmark.run(o) { msg in
                logger.info("\(msg)")
                if !json { FileHandleStderr.write("\(msg)\n") }
            }
            print(json ? report.json() : report.table())
        }
    }

    struct BenchPeer: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "_peer", abstract: "Internal: the second process of `bench ring`.", shouldDisplay: false)
        @Option var region: String
        @Option var phase: String
        @Option var iterations: Int
        @Option var warmup: Int
        @Option var first: UInt64
        @Option var cpu: Int?

        func run() throws {
            guard let p = RingBenchmark.Phase(rawValue: phase) else { throw ValidationError("unknown phase \(phase)") }
            if let cpu { try CPU.pin(to: cpu) }
            let r = try Region.open(at: region)
            let report = try RingBenchmark.runPeer(region: r, phase: p, iterations: iterations, warmup: warmup, first: first)
            print(String(decoding: try JSONEncoder().encode(report), as: UTF8.self))
        }
    }
}
