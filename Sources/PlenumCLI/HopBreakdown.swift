import PlenumCluster
import PlenumWire

/// Where a traced operation's time goes (`plenum bench cluster --trace`,
/// SPEC §8): the stores' hop events (SPEC §9.2 0x17) that fall between the
/// client's post and its reply, merged across nodes in time order (one
/// CLOCK_MONOTONIC on one host), give each operation a sequence of stamps;
/// the operations sharing the most common sequence give a median per
/// segment between consecutive stamps.
struct HopBreakdown: Codable {
    struct Segment: Codable {
        var from: String
        var to: String
        var p50Ns: UInt64
        /// Of the sum of segment medians.
        var share: Double
    }
    var name: String
    var traced: Int
    /// Operations with the most common sequence of stamps (the others, e.g.
    /// ones a heartbeat-time message interleaved with, are left out).
    var usual: Int
    var totalP50Ns: UInt64
    var segments: [Segment]

    /// One operation: its client's post and reply times.
    struct Op { var start: UInt64; var end: UInt64 }

    static func label(_ e: HopEvent, node: NodeID) -> String {
        func frame(_ k: UInt16) -> String { Frame.Kind(rawValue: k).map { "\($0)" } ?? "0x" + String(k, radix: 16) }
        func message(_ k: UInt16) -> String { PeerMessage.Kind(rawValue: k).map { "\($0)" } ?? "0x" + String(k, radix: 16) }
        switch e.what {
        case .clientIn: return "n\(node) takes \(frame(e.kind))"
        case .clientOut: return "n\(node) posts \(frame(e.kind))"
        case .clientWake: return "n\(node) wakes the client"
        case .peerOut: return "n\(node) posts \(message(e.kind)) → n\(e.peer)"
        case .peerIn: return "n\(node) takes \(message(e.kind)) ← n\(e.peer)"
        case .peerBell: return "n\(node) rings n\(e.peer)'s bell"
        }
    }

    /// `events[n]`: node n's trace; `client` is the tracing client's id at
    /// node `requester`. Events of other clients and one-way peer messages
    /// (correlation 0: releases, notifications, hellos) are not on an
    /// operation's path and are left out; bells and wakes are kept.
    static func analyse(name: String, ops: [Op], events: [NodeID: [HopEvent]], requester: NodeID, client: UInt64) -> HopBreakdown {
        var merged: [(UInt64, String)] = []
        for (n, list) in events {
            for e in list {
                switch e.what {
                case .clientIn, .clientOut, .clientWake: guard n == requester, e.client == client else { continue }
                case .peerIn, .peerOut: guard e.key != 0 else { continue }
                case .peerBell: break
                }
                merged.append((e.nanos, label(e, node: n)))
            }
        }
        merged.sort { $0.0 < $1.0 }
        var sequences: [[String]: [[UInt64]]] = [:]
        var lower = 0
        for op in ops {
            while lower < merged.count, merged[lower].0 < op.start { lower += 1 }
            var labels = ["client posts"], times = [op.start]
            var i = lower
            while i < merged.count, merged[i].0 <= op.end { labels.append(merged[i].1); times.append(merged[i].0); i += 1 }
            labels.append("client has the reply")
            times.append(op.end)
            sequences[labels, default: []].append(times)
        }
        guard let (labels, runs) = sequences.max(by: { $0.value.count < $1.value.count || ($0.value.count == $1.value.count && $0.key.count > $1.key.count) }) else {
            return HopBreakdown(name: name, traced: 0, usual: 0, totalP50Ns: 0, segments: [])
        }
        func median(_ v: [UInt64]) -> UInt64 { v.isEmpty ? 0 : v.sorted()[v.count / 2] }
        var segments: [Segment] = []
        for k in 0..<(labels.count - 1) {
            segments.append(Segment(from: labels[k], to: labels[k + 1], p50Ns: median(runs.map { $0[k + 1] &- $0[k] }), share: 0))
        }
        let sum = max(1, segments.reduce(0) { $0 + $1.p50Ns })
        for k in segments.indices { segments[k].share = Double(segments[k].p50Ns) / Double(sum) }
        return HopBreakdown(name: name, traced: ops.count, usual: runs.count, totalP50Ns: median(runs.map { $0.last! &- $0.first! }), segments: segments)
    }

    /// The table `bench cluster --trace` prints.
    func table() -> String {
        func us(_ v: UInt64) -> String { String(format: "%8.2f", Double(v) / 1000) }
        var s = "\(name): \(usual) of \(traced) traced operations share these \(segments.count + 1) stamps; total p50 \(us(totalP50Ns)) µs\n"
        for g in segments {
            s += "  \(us(g.p50Ns)) µs  \(String(format: "%5.1f", 100 * g.share))%  \(g.from)  ⟶  \(g.to)\n"
        }
        return s
    }
}
