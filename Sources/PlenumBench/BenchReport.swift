import Foundation

/// The result of `plenum bench ring`; JSON keys are snake_case (SPEC.md §8).
public struct RingBenchReport: Codable, Sendable {
    public var benchmark = "ring"
    public var lineSize: Int
    public var messages: Int
    public var rounds: Int
    public var hardwareLineSize: Int
    public var flushInstruction: String
    public var pinnedCpus: [Int]
    public var floor: FloorPart
    public var ring: RingPart
    public var ratio: Ratio

    public struct FloorPart: Codable, Sendable {
        public var coherentRttNs: LatencySummary
        public var flushedRttNs: LatencySummary
    }

    public struct RingPart: Codable, Sendable {
        public var rttNs: LatencySummary
        public var rttUnflushedNs: LatencySummary
        public var throughputMsgsPerS: Double
        public var throughputRounds: [Double]
        public var throughputMessages: Int
        public var payloadBytes: Int
        public var lost: UInt64
        public var duplicated: UInt64
        public var corrupt: UInt64
    }

    /// ring rtt p50 / floor flushed p50, per round and their median.
    public struct Ratio: Codable, Sendable {
        public var perRound: [Double]
        public var median: Double
        public var target: Double
        public var met: Bool
    }

    public func json() -> String {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: (try? e.encode(self)) ?? Data(), as: UTF8.self)
    }

    public func table() -> String {
        func row(_ name: String, _ s: LatencySummary) -> String {
            name.padding(toLength: 26, withPad: " ", startingAt: 0)
                + [s.p50, s.p99, s.p999].map { String($0).leftPad(10) }.joined() + String(s.count).leftPad(12)
        }
        var out = "plenum bench ring — line size \(lineSize) (hardware \(hardwareLineSize)), \(flushInstruction), "
        out += pinnedCpus.isEmpty ? "not pinned" : "pinned to CPUs \(pinnedCpus.map(String.init).joined(separator: ","))"
        out += ", \(rounds) rounds\n\n"
        out += "round trip (ns)".padding(toLength: 26, withPad: " ", startingAt: 0)
            + "p50".leftPad(10) + "p99".leftPad(10) + "p99.9".leftPad(10) + "samples".leftPad(12) + "\n"
        out += row("floor, coherent", floor.coherentRttNs) + "\n"
        out += row("floor, flushed", floor.flushedRttNs) + "\n"
        out += row("ring, flushed", ring.rttNs) + "\n"
        out += row("ring, --no-flush", ring.rttUnflushedNs) + "\n\n"
        out += "one-way throughput: \(Int(ring.throughputMsgsPerS)) msgs/s (64-byte payloads, median of \(ring.throughputRounds.count) rounds); round trips carry \(ring.payloadBytes)-byte payloads\n"
        out += "lost \(ring.lost), duplicated/reordered \(ring.duplicated), corrupt \(ring.corrupt)\n"
        out += String(format: "ring p50 / flushed floor p50: median %.2f (rounds: %@), target ≤ %.1f: %@\n",
                      ratio.median, ratio.perRound.map { String(format: "%.2f", $0) }.joined(separator: ", "),
                      ratio.target, ratio.met ? "met" : "NOT met")
        return out
    }
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
