import PlenumCluster
import PlenumMemory

/// The carrier side of the links (SPEC §10.11): with a transport other than
/// the rings, §10.5 messages go through a `PeerCarrier`; liveness stays on
/// the rings.
extension PeerLinks {
    /// Whether the link (direct or relayed) to `n` is up.
    func isUp(_ n: NodeID) -> Bool {
        if case .up? = links[n]?.state { return true }
        if case .up? = relayed[n]?.state { return true }
        return false
    }

    /// Starts the carrier the cluster file names (SPEC §10.11).
    func startCarrier(bell: String) throws {
        guard config.transport != .rings else { return }
        let box = PeerInbox(bell: bell)
        carrier = try PeerCarriers.make(config.transport, PeerCarrierContext(config: config, me: me, inbox: box, logger: logger))
        inbox = box
        logger.info("peer messages over \(config.transport.rawValue)")
    }

    func stopCarrier() {
        carrier?.stop()
        carrier = nil
    }

    /// What the carrier delivered, after the rings' hellos of this pass.
    /// A carrier is not ordered with the rings: a message can overtake the
    /// hello that brings its sender up, so it waits (`parked`, at most
    /// `maxParked` per node and `dead_after_ms`) instead of being refused.
    func takeCarried(into events: inout [ClusterEvent], max: Int) -> Int {
        for (node, waiting) in parked where isUp(node) {
            for (corr, m, _) in waiting { events.append(.message(from: node, correlation: corr, m)) }
            parked[node] = nil
        }
        return inbox?.take(max: max) { from, corr, m in
            // Hellos and relays are the rings' alone.
            guard m.kind != .hello, m.kind != .relay, links[from] != nil || relayed[from] != nil else { carrierRefused += 1; return }
            if isUp(from) {
                trace.record(.peerIn, kind: m.kind.rawValue, key: corr, peer: from)
                events.append(.message(from: from, correlation: corr, m))
            } else if parked[from, default: []].count < Self.maxParked {
                parked[from, default: []].append((corr, m, monotonicNanos()))
            } else {
                carrierRefused += 1
            }
        } ?? 0
    }

    static let maxParked = 4096

    /// Parked messages whose sender did not come up in time are refused.
    func expireParked(now: UInt64) {
        for (node, waiting) in parked {
            let kept = waiting.filter { now &- $0.2 <= deadAfter }
            carrierRefused += waiting.count - kept.count
            parked[node] = kept.isEmpty ? nil : kept
        }
    }
}
