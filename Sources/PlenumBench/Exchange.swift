import PlenumMemory
import PlenumRegion
import PlenumRing

/// Two processes exchanging messages through a pair of rings in one region
/// (`plenum ring exchange`, `Scripts/demo`, the multi-process tests).
///
/// Role `a` produces on ring "a-to-b" and consumes "b-to-a"; role `b` the
/// reverse. Each side posts `count` messages with ids 0..<count and payloads
/// from ``MessagePattern``, and checks every message it receives.
public enum Exchange {
    public enum Role: String, Sendable, Codable, CaseIterable {
        case a, b
        var outbound: String { self == .a ? "a-to-b" : "b-to-a" }
        var inbound: String { self == .a ? "b-to-a" : "a-to-b" }
        var stream: UInt64 { self == .a ? 0xA : 0xB }
        var peerStream: UInt64 { self == .a ? 0xB : 0xA }
    }

    public struct Report: Codable, Sendable {
        public var role: Role
        public var sent: UInt64
        public var check: DeliveryCheck
        /// Slots the ring refused to deliver (checksum, length, sequence).
        public var ringCorrupt: UInt64
        public var fullRetries: UInt64
        public var seconds: Double
        public var flushes: Bool
    }

    public struct Timeout: Error, CustomStringConvertible {
        public let report: Report
        public var description: String {
            "exchange timed out after \(report.seconds)s: sent \(report.sent), received \(report.check.received); is the peer process running?"
        }
    }

    /// Creates the region with both rings (the region's owner does this once).
    public static func prepare(path: String, slots: Int, slotSize: Int, lineSize: LineSize, numaNode: Int? = nil) throws -> Region {
        let layoutBytes = try RingLayout(base: 0, lineSize: lineSize.bytes, slotCount: slots, slotSize: slotSize).totalBytes
        let size = RegionLayout.dataOffset(line: lineSize.bytes) + 2 * ((layoutBytes + 4095) / 4096 * 4096) + 4096
        let region = try Region.create(at: path, size: size, lineSize: lineSize, owner: 0, numaNode: numaNode, overwrite: true)
        try Ring.create(in: region, name: Role.a.outbound, slotCount: slots, slotSize: slotSize, producer: 0, consumer: 1)
        try Ring.create(in: region, name: Role.b.outbound, slotCount: slots, slotSize: slotSize, producer: 1, consumer: 0)
        return region
    }

    public static func run(region: Region, role: Role, count: UInt64, flushes: Bool = true,
                           backoff: Backoff = Backoff(), timeoutSeconds: Double = 600,
                           progress: ((Report) -> Void)? = nil) throws -> Report {
        let memory = region.memory(flushes: flushes)
        let outLayout = try Ring.open(role.outbound, in: region, memory: memory)
        let inLayout = try Ring.open(role.inbound, in: region, memory: memory)
        var producer = try RingProducer(memory: memory, layout: outLayout)
        var consumer = RingConsumer(memory: memory, layout: inLayout)
        let mine = MessagePattern(stream: role.stream, maxLength: outLayout.maxPayload)
        let theirs = MessagePattern(stream: role.peerStream, maxLength: inLayout.maxPayload)
        var report = Report(role: role, sent: 0, check: DeliveryCheck(), ringCorrupt: 0, fullRetries: 0, seconds: 0, flushes: flushes)
        var backoff = backoff
        let start = monotonicNanos()
        let deadline = start + UInt64(timeoutSeconds * 1e9)
        var lastProgress = start
        var rounds: UInt64 = 0
        while report.sent < count || report.check.received + report.ringCorrupt < count {
            var moved = false
            if report.sent < count {
                let id = report.sent
                let result = try producer.post(kind: 1, requestId: id, length: mine.length(of: id)) { mine.fill($0, index: id) }
                if case .posted = result { report.sent += 1; moved = true } else { report.fullRetries += 1 }
            }
            switch consumer.poll({ m in (m.requestId, theirs.matches(m.payload, index: m.requestId)) }) {
            case .delivered(let (id, intact)): report.check.observe(id: id, intact: intact); moved = true
            case .corrupt: report.ringCorrupt += 1; moved = true
            case .empty: break
            }
            if moved { backoff.reset() } else { backoff.idle() }
            rounds &+= 1
            if rounds & 0xFFF == 0 {
                let now = monotonicNanos()
                report.seconds = Double(now - start) / 1e9
                if now > deadline { throw Timeout(report: report) }
                if let progress, now - lastProgress > 1_000_000_000 { lastProgress = now; progress(report) }
            }
        }
        consumer.flushAcknowledgements()
        if report.check.nextExpected < count { report.check.lost += count - report.check.nextExpected }
        report.seconds = Double(monotonicNanos() - start) / 1e9
        return report
    }
}
