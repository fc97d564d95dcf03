import Foundation
import Histogram
import PlenumMemory
import PlenumRegion
import PlenumRing

/// `plenum bench ring` (SPEC.md §8): two processes pinned to different CPUs;
/// the bare ping-pong floor (coherent and flushed) and the ring (round trip
/// with and without flushes, one-way throughput), all in one invocation,
/// interleaved over several rounds so machine noise hits every series alike.
public enum RingBenchmark {
    public struct Options: Sendable {
        public var messages = 100_000
        public var throughputMessages = 1_000_000
        public var warmup = 2_000
        public var rounds = 3
        public var lineSize = LineSize.default
        public var payloadBytes = 32
        public var cpus: (Int, Int)? = (0, 1)
        public var directory = "/dev/shm"
        public init() {}
    }

    public enum Phase: String, CaseIterable, Sendable {
        case floorCoherent = "floor-coherent", floorFlushed = "floor-flushed"
        case ringFlushed = "ring-flushed", ringUnflushed = "ring-unflushed", throughput
    }

    static let slotSize = 128
    static let floorName = "floor"

    public struct PeerReport: Codable, Sendable {
        public var check = DeliveryCheck()
        public var ringCorrupt: UInt64 = 0
    }

    // MARK: - Parent

    public static func run(_ o: Options, log: (String) -> Void) throws -> RingBenchReport {
        let path = "\(o.directory)/plenum-bench-\(getpid()).region"
        let region = try setUp(path: path, options: o)
        defer { unlink(path) }
        var pinned: [Int] = []
        if let (c0, c1) = o.cpus, ProcessInfo.processInfo.activeProcessorCount > max(c0, c1) {
            try CPU.pin(to: c0)
            pinned = [c0, c1]
        }
        var h: [Phase: Histogram<UInt64>] = [:]
        for p in Phase.allCases { h[p] = .latency() }
        var perRound: [Phase: [Double]] = [:]
        var throughputs: [Double] = []
        var check = DeliveryCheck()
        var ringCorrupt: UInt64 = 0
        for round in 1...max(1, o.rounds) {
            for phase in Phase.allCases {
                log("round \(round)/\(o.rounds): \(phase.rawValue)")
                let first = UInt64(round - 1) * UInt64(o.warmup + max(o.messages, o.throughputMessages) + 1)
                var args = ["bench", "_peer", "--region", path, "--phase", phase.rawValue,
                            "--iterations", "\(iterations(phase, o))", "--warmup", "\(o.warmup)", "--first", "\(first)"]
                if pinned.count == 2 { args += ["--cpu", "\(pinned[1])"] }
                let child = try Peer.Child(arguments: args)
                var roundHist = Histogram<UInt64>.latency()
                do {
                    if phase == .throughput {
                        let rate = try runThroughput(region: region, options: o, first: first)
                        throughputs.append(rate)
                    } else {
                        try runLatency(phase, region: region, options: o, first: first) { roundHist.record($0) }
                    }
                } catch {
                    child.kill()
                    throw error
                }
                let (status, output) = child.wait()
                guard status == 0, let line = output.split(separator: "\n").last,
                      let peer = try? JSONDecoder().decode(PeerReport.self, from: Data(line.utf8)) else {
                    throw BenchError.peerFailed(phase: phase.rawValue, status: status, output: output)
                }
                if phase != .floorCoherent && phase != .floorFlushed {
                    check.lost += peer.check.lost; check.duplicated += peer.check.duplicated
                    check.reordered += peer.check.reordered; check.corrupt += peer.check.corrupt
                    check.received += peer.check.received
                    ringCorrupt += peer.ringCorrupt
                }
                if phase != .throughput {
                    h[phase]!.add(roundHist)
                    perRound[phase, default: []].append(Double(roundHist.valueAtPercentile(50)))
                }
            }
        }
        let flushedFloor = perRound[.floorFlushed] ?? [], ring = perRound[.ringFlushed] ?? []
        let ratios = zip(ring, flushedFloor).map { $0 / max($1, 1) }
        return RingBenchReport(
            lineSize: o.lineSize.bytes, messages: o.messages, rounds: o.rounds,
            hardwareLineSize: CPU.hardwareLineSize, flushInstruction: CPU.flushInstruction, pinnedCpus: pinned,
            floor: .init(coherentRttNs: LatencySummary(h[.floorCoherent]!), flushedRttNs: LatencySummary(h[.floorFlushed]!)),
            ring: .init(rttNs: LatencySummary(h[.ringFlushed]!), rttUnflushedNs: LatencySummary(h[.ringUnflushed]!),
                        throughputMsgsPerS: median(throughputs), throughputRounds: throughputs,
                        throughputMessages: o.throughputMessages, payloadBytes: o.payloadBytes,
                        lost: check.lost, duplicated: check.duplicated + check.reordered,
                        corrupt: check.corrupt + ringCorrupt),
            ratio: .init(perRound: ratios, median: median(ratios), target: 1.5, met: median(ratios) <= 1.5))
    }

    static func iterations(_ phase: Phase, _ o: Options) -> Int {
        phase == .throughput ? o.throughputMessages : o.messages
    }

    static func setUp(path: String, options o: Options) throws -> Region {
        let line = o.lineSize.bytes
        let ringBytes = try RingLayout(base: 0, lineSize: line, slotCount: 1024, slotSize: slotSize).totalBytes
        let pageRing = (ringBytes + 4095) / 4096 * 4096
        let size = RegionLayout.dataOffset(line: line) + 8 * pageRing + 2 * 4096
        let region = try Region.create(at: path, size: size, lineSize: o.lineSize, overwrite: true)
        try SegmentTable.append(.raw, name: floorName, length: 2 * line, in: region.memory(), header: region.header)
        for name in ["req-f", "rep-f", "req-n", "rep-n", "tp", "tp-done"] {
            let toPeer = name.hasPrefix("req") || name == "tp"
            try Ring.create(in: region, name: name, slotCount: name == "tp" ? 1024 : 256, slotSize: slotSize,
                            producer: toPeer ? 0 : 1, consumer: toPeer ? 1 : 0)
        }
        return region
    }

    static func rings(_ phase: Phase) -> (request: String, reply: String, flushes: Bool) {
        switch phase {
        case .ringUnflushed: return ("req-n", "rep-n", false)
        case .throughput: return ("tp", "tp-done", true)
        default: return ("req-f", "rep-f", true)
        }
    }

    static func runLatency(_ phase: Phase, region: Region, options o: Options, first: UInt64, record: (UInt64) -> Void) throws {
        let total = o.warmup + o.messages
        if phase == .floorCoherent || phase == .floorFlushed {
            let memory = region.memory(flushes: true)
            let base = try SegmentTable.find(floorName, in: memory, header: region.header).offset
            var n = 0
            Floor.initiate(memory, at: base, iterations: total, first: first + 1, flushed: phase == .floorFlushed) { ns in
                if n >= o.warmup { record(ns) }
                n += 1
            }
            return
        }
        let (req, rep, flushes) = rings(phase)
        let memory = region.memory(flushes: flushes)
        var producer = try RingProducer(memory: memory, layout: Ring.open(req, in: region, memory: memory))
        var consumer = RingConsumer(memory: memory, layout: try Ring.open(rep, in: region, memory: memory))
        var payload = [UInt8](repeating: 0x5A, count: o.payloadBytes)
        for i in 0..<UInt64(total) {
            let t0 = monotonicNanos()
            try payload.withUnsafeMutableBytes { p in
                p.storeBytes(of: i, toByteOffset: 0, as: UInt64.self)
                while case .full = try producer.post(kind: 2, requestId: i, payload: UnsafeRawBufferPointer(p)) { CPU.relax() }
            }
            while true {
                switch consumer.poll({ $0.requestId }) {
                case .delivered(let id):
                    guard id == i else { throw BenchError.mismatch(expected: i, got: id) }
                case .corrupt(let why): throw BenchError.corrupt(why.description)
                case .empty: CPU.relax(); continue
                }
                break
            }
            if i >= UInt64(o.warmup) { record(monotonicNanos() &- t0) }
        }
        consumer.flushAcknowledgements()
    }

    static func runThroughput(region: Region, options o: Options, first: UInt64) throws -> Double {
        let (req, rep, _) = rings(.throughput)
        let memory = region.memory()
        var producer = try RingProducer(memory: memory, layout: Ring.open(req, in: region, memory: memory))
        var consumer = RingConsumer(memory: memory, layout: try Ring.open(rep, in: region, memory: memory))
        let pattern = MessagePattern(stream: 7, maxLength: 64)
        func awaitReply() throws {
            while true {
                switch consumer.poll({ _ in () }) {
                case .delivered: return
                case .corrupt(let why): throw BenchError.corrupt(why.description)
                case .empty: CPU.relax()
                }
            }
        }
        // Handshake: one message each way so the peer is running before the clock starts.
        while case .full = try producer.post(kind: 9, requestId: 0, payload: UnsafeRawBufferPointer(start: nil, count: 0)) { CPU.relax() }
        try awaitReply()
        let t0 = monotonicNanos()
        var id: UInt64 = 0
        while id < UInt64(o.throughputMessages) {
            let n = id
            if case .posted = try producer.post(kind: 3, requestId: n, length: 64, fill: { pattern.fill($0, index: n) }) {
                id += 1
            } else { CPU.relax() }
        }
        try awaitReply()
        consumer.flushAcknowledgements()
        return Double(o.throughputMessages) / (Double(monotonicNanos() - t0) / 1e9)
    }

    // MARK: - Peer process

    public static func runPeer(region: Region, phase: Phase, iterations: Int, warmup: Int, first: UInt64) throws -> PeerReport {
        var report = PeerReport()
        let total = phase == .throughput ? iterations : warmup + iterations
        if phase == .floorCoherent || phase == .floorFlushed {
            let memory = region.memory()
            let base = try SegmentTable.find(floorName, in: memory, header: region.header).offset
            Floor.respond(memory, at: base, iterations: total, first: first + 1, flushed: phase == .floorFlushed)
            return report
        }
        let (req, rep, flushes) = rings(phase)
        let memory = region.memory(flushes: flushes)
        var consumer = RingConsumer(memory: memory, layout: try Ring.open(req, in: region, memory: memory),
                                    ackBatch: phase == .throughput ? 64 : 16)
        var producer = try RingProducer(memory: memory, layout: Ring.open(rep, in: region, memory: memory))
        func reply(_ id: UInt64) throws {
            while case .full = try producer.post(kind: 4, requestId: id, payload: UnsafeRawBufferPointer(start: nil, count: 0)) { CPU.relax() }
        }
        let pattern = MessagePattern(stream: 7, maxLength: 64)
        var received = 0
        let expected = phase == .throughput ? total + 1 : total
        while received < expected {
            let r = consumer.poll { m -> (UInt64, Bool, UInt16) in
                (m.requestId, m.kind != 3 || (m.payload.count == 64 && pattern.contentMatches(m.payload, index: m.requestId)), m.kind)
            }
            switch r {
            case .delivered(let (id, intact, kind)):
                received += 1
                if kind == 9 { try reply(0); continue } // throughput handshake
                report.check.observe(id: id, intact: intact)
                if phase != .throughput { try reply(id) }
            case .corrupt: report.ringCorrupt += 1; received += 1
            case .empty: CPU.relax()
            }
        }
        if phase == .throughput { try reply(UInt64(iterations)) }
        consumer.flushAcknowledgements()
        return report
    }

    static func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return 0 }
        let s = values.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

public enum BenchError: Error, CustomStringConvertible {
    case peerFailed(phase: String, status: Int32, output: String)
    case mismatch(expected: UInt64, got: UInt64)
    case corrupt(String)

    public var description: String {
        switch self {
        case .peerFailed(let p, let s, let o): return "benchmark peer for \(p) failed (exit \(s)): \(o.suffix(500))"
        case .mismatch(let e, let g): return "reply \(g) arrived where \(e) was expected: the ring lost or reordered a message"
        case .corrupt(let why): return "corrupt slot during the benchmark: \(why)"
        }
    }
}
