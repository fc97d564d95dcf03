/// The liveness checker (SPEC.md §7.3 "Liveness"): once the fault phase is
/// over and every crashed node is back (ring-exchange), or membership has
/// settled (cluster: restarts done, every death noticed, every life met), the protocol must finish its work within a bounded
/// number of operations. Safety checkers judge what happened; this one
/// judges what never happens — two ends that wait on each other forever, a
/// request nobody answers, a message that never leaves its outbox.
///
/// ```
///  step:  0 ─── fault phase ─── maxSteps ── quiet ──▶ quietAt ──────────────▶ 2·maxSteps
///                                            (crashed nodes back / membership settled)
///  ring:      no progress (post, delivery, reset) for `ringBound` steps after quietAt ─▶ stalled
///  cluster:   a client request unanswered `requestBound` steps after max(issued, quietAt),
///             a peer message not posted or not taken for `ringBound` steps after quietAt ─▶ stalled
///  end:       a ring with messages never posted, a cluster that never quiesced ─▶ stalled
/// ```
/// The bounds are far above what a live protocol needs once faults stop
/// (a post or poll is a few operations; a cluster request a few hops), and
/// well inside the quiet phase, so a stall is reported with what each side
/// was waiting for rather than as a run that merely ran out of steps.
enum LivenessBound {
    /// Operations without any ring progress once faults stopped.
    static let ring = 5_000
    /// Operations a cluster client's request may stay unanswered once
    /// faults stopped and every death is known: the cores' request timeout
    /// (a request whose peer died with it in flight — an acquire a home
    /// forwarded to an owner it did not yet know dead — ends there, failed)
    /// plus 5,000.
    static let request = ClusterExchange.requestTimeoutSteps + 5_000
}

/// Ring-exchange: any ring progress resets the clock; a stall names every
/// ring that still has work.
final class RingLiveness {
    unowned(unsafe) let sim: Simulation
    let ledgers: [RingLedger]
    /// The step of the last post, delivery, reset or (re)start.
    var progressAt = 0

    init(sim: Simulation, ledgers: [RingLedger]) {
        self.sim = sim
        self.ledgers = ledgers
    }

    func progressed() { progressAt = sim.step }

    /// A ring with work left. Under injected corruption a refused slot is
    /// never delivered, and that is the fault's doing (§7.3 "Checksum").
    func stuck(_ l: RingLedger) -> Bool {
        !l.allDelivered && !(sim.config.injectsCorruption && l.skipped > 0 && l.allPosted)
    }

    /// Called at every loop head of every node (cheap before `maxSteps`).
    func check() {
        guard sim.bound == nil, sim.step >= sim.config.maxSteps else { return }
        guard !sim.crashed.contains(true) else { progressAt = sim.step; return }
        let quietFor = sim.step - max(progressAt, sim.config.maxSteps)
        guard quietFor > LivenessBound.ring, ledgers.contains(where: stuck) else { return }
        fail("no ring made progress for \(quietFor) operations after faults stopped")
    }

    /// After the run: every message the application meant to post was
    /// posted and delivered (or discarded by a reset).
    func checkEnd() {
        guard sim.violation == nil, ledgers.contains(where: stuck) else { return }
        fail(sim.budgetExhausted ? "step budget exhausted (\(sim.stepBudget) operations) with work left" : "the run ended with work left")
    }

    private func fail(_ why: String) {
        let rings = ledgers.filter(stuck)
        guard let first = rings.first else { return }
        sim.fail(.stalled, node: first.consumer, line: -1, "\(why): " + rings.map(\.progressText).joined(separator: "; "))
    }
}

extension RingLedger {
    /// Where a ring stands, for a stall report.
    var progressText: String {
        let delivered = self.delivered.filter { $0 }.count
        return "ring \(ring) (\(producer)→\(consumer)) posted \(min(next, messages)) of \(messages)"
            + " (producer epoch \(producerEpoch)\(posting >= 0 ? ", a post under way" : "")), delivered \(delivered)"
            + " (last \(lastDelivered), consumer acknowledged \(acknowledged.sequence) in epoch \(acknowledged.epoch))"
            + (discardBelow > 0 ? ", reset discarded below \(discardBelow)" : "")
    }
}

/// Cluster: every request a live client sent is answered, and every peer
/// message between live nodes is posted and taken, within bounds once the
/// faults stopped and membership settled.
extension ClusterWorld {
    /// Called at every loop head of every node (cheap before `maxSteps`).
    func checkLiveness() {
        guard sim.step >= sim.config.maxSteps, sim.violation == nil else { return }
        if quietAt == nil {
            guard unsettled.isEmpty else { return }
            quietAt = sim.step
        }
        let quiet = quietAt!
        for i in 0..<n where !sim.crashed[i] {
            let c = clients[i]
            if c.waitingFor != nil, sim.step - max(c.issuedAt, quiet) > LivenessBound.request {
                sim.fail(.stalled, node: i, line: -1,
                         "node \(i)'s client has waited \(sim.step - c.issuedAt) operations for an answer to \(c.waitingFor!) (faults stopped and membership settled at step \(quiet)); requests pending \((0..<n).map { cores[$0].pendingRequests }), messages in flight \(inFlightText.isEmpty ? "none" : inFlightText), outboxes \(outboxText.isEmpty ? "empty" : outboxText)")
                return
            }
        }
        if livePending, sim.step - max(messageMovedAt, quiet) > LivenessBound.ring {
            sim.fail(.stalled, node: (0..<n).first { !sim.crashed[$0] } ?? 0, line: -1,
                     "no peer message was posted or taken for \(sim.step - max(messageMovedAt, quiet)) operations after faults stopped, with messages in flight \(inFlightText.isEmpty ? "none" : inFlightText) and outboxes \(outboxText.isEmpty ? "empty" : outboxText)")
        }
    }
}
