/// The checker's account of one ring in `ring-exchange` (SPEC.md §7.3):
/// what the application posted, what came out, and what a restart or a
/// reset may excuse. Every message carries its global index as the request
/// id, and its payload is a function of (ring, index), so a delivery can be
/// judged on its own.
///
/// ```
///  index:   0 … discardBelow−1 │ discardBelow … next−1 │ next (in flight)
///           may be discarded   │ must be delivered     │ may be delivered
///           by a reset         │ exactly in order      │ before post returns
/// ```
/// At-least-once across consumer restarts (SPEC §5.6): after a restart the
/// consumer may deliver again every message after its published
/// acknowledgement, never one at or before it.
final class RingLedger {
    let ring: Int
    let producer: Int
    let consumer: Int
    let messages: Int
    /// Index of the next message the application posts (retried after a
    /// `.full`, a `.resetPending` or a crash that lost it).
    var next = 0
    /// The index whose post is under way (it may be delivered before
    /// `post` returns), else -1.
    var posting = -1
    /// The (epoch, sequence) key that post is writing.
    var postingKey: UInt64 = 0
    /// Slots whose post a producer crash cut short (the key of each). A
    /// consumer may have seen such a slot's commit word — snooped from the
    /// owner's dirty line — before the crash took the line, and then read
    /// older bytes of it: its CRC check refusing the slot is the protocol
    /// working (§5.5), not a fault (ring-exchange seed 259765).
    var cutShort: Set<UInt64> = []
    /// The (epoch, sequence) of the last post that returned, per producer
    /// incarnation: a restarted producer must resume at or after it.
    var lastReturned: (epoch: UInt64, sequence: UInt64)?
    /// Index of every (epoch, sequence) posted: `epoch << 32 | sequence`.
    var indexAt: [UInt64: Int] = [:]
    var delivered: [Bool]
    /// Highest index delivered since the consumer's last restart or epoch.
    var lastDelivered = -1
    /// The epoch of the consumer's last delivery.
    var deliveryEpoch: UInt64 = 1
    /// The acknowledgement the consumer had published (fence complete), in
    /// the epoch it was published in.
    var acknowledged: (epoch: UInt64, sequence: UInt64) = (1, 0)
    /// Every index below this was posted before a reset: it may be discarded.
    var discardBelow = 0
    /// Slots the consumer refused with injected corruption.
    var skipped = 0
    /// The first index posted in each epoch (epoch 1 starts at 0).
    var epochStart: [UInt64: Int] = [1: 0]
    /// The producer's epoch as the ledger knows it.
    var producerEpoch: UInt64 = 1

    init(ring: Int, producer: Int, consumer: Int, messages: Int) {
        self.ring = ring
        self.producer = producer
        self.consumer = consumer
        self.messages = messages
        delivered = [Bool](repeating: false, count: messages)
    }

    static func key(_ epoch: UInt64, _ sequence: UInt64) -> UInt64 { epoch << 32 | sequence }

    /// The producer has nothing more to post.
    var allPosted: Bool { next >= messages }

    /// The consumer has taken everything it will ever be given.
    var allDelivered: Bool {
        (lastDelivered == messages - 1) || (allPosted && discardBelow >= messages)
            || (allPosted && (discardBelow..<messages).allSatisfy { delivered[$0] })
    }

    /// Payloads already computed, by index (the run's `maxPayload` is fixed):
    /// every post and every delivery needs one (a tenth of the fuzz's
    /// instructions went to recomputing them, issue 24).
    private var payloads: [[UInt8]?] = []

    /// The payload of message `index` (see `payload(ring:index:maxPayload:)`).
    func payload(_ index: Int, maxPayload: Int) -> [UInt8] {
        if payloads.isEmpty { payloads = Array(repeating: nil, count: messages) }
        if let p = payloads[index] { return p }
        let p = Self.payload(ring: ring, index: index, maxPayload: maxPayload)
        payloads[index] = p
        return p
    }

    /// The deterministic payload of message `index` of this ring.
    static func payload(ring: Int, index: Int, maxPayload: Int) -> [UInt8] {
        var z = UInt64(ring &* 1_000_003 &+ index) &* 0x9E37_79B9_7F4A_7C15
        let length = Int(z % UInt64(maxPayload + 1))
        return (0..<length).map { i in
            z = z &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: z >> 33 ^ UInt64(i))
        }
    }

    /// Judges one delivery; returns the violation, if any.
    func deliver(index: Int, sequence: UInt64, epoch: UInt64, bytes: some Collection<UInt8>, maxPayload: Int) -> (Violation.Kind, String)? {
        let name = "ring \(ring) (\(producer)→\(consumer))"
        guard index >= 0, index < messages, index < next || index == posting else {
            return (.mismatch, "\(name): message \(index) delivered but never posted")
        }
        if let posted = indexAt[Self.key(epoch, sequence)], posted != index {
            return (.mismatch, "\(name): sequence \(sequence) of epoch \(epoch) delivered message \(index), but message \(posted) was posted there")
        }
        if !bytes.elementsEqual(payload(index, maxPayload: maxPayload)) {
            return (.mismatch, "\(name): message \(index) payload differs from what was posted")
        }
        if epoch != deliveryEpoch {
            // A new epoch: delivery restarts at the first message after the reset.
            deliveryEpoch = epoch
            lastDelivered = (epochStart[epoch] ?? discardBelow) - 1
        }
        if index <= lastDelivered {
            return (.duplicated, "\(name): message \(index) delivered again (last delivered \(lastDelivered))")
        }
        // Every index skipped must be excused: discarded by a reset, or a
        // slot refused under injected corruption.
        for gap in (lastDelivered + 1)..<index where !delivered[gap] && gap >= discardBelow {
            if skipped > 0 { continue }
            return (.lost, "\(name): message \(index) delivered but message \(gap) never was")
        }
        delivered[index] = true
        lastDelivered = index
        return nil
    }

    /// The ledger's state, for exploration's state hashing.
    var stateHash: UInt64 {
        var h = UInt64(bitPattern: Int64(next)) &* 31 &+ UInt64(bitPattern: Int64(posting))
        h = h &* 31 &+ UInt64(bitPattern: Int64(lastDelivered))
        h = h &* 31 &+ deliveryEpoch &* 7 &+ UInt64(discardBelow)
        h = h &* 31 &+ (lastReturned.map { $0.epoch << 32 | $0.sequence } ?? 0)
        return h &* 31 &+ acknowledged.sequence
    }

    /// The producer reset the ring into `epoch`: everything posted so far
    /// may be discarded (SPEC §5.6).
    func reset(to epoch: UInt64) {
        producerEpoch = epoch
        discardBelow = next
        epochStart[epoch] = next
    }

    /// A restarted producer attached and resumed at `sequence` of `epoch`
    /// (`awaiting`: a reset it had started is not acknowledged yet).
    func producerRestarted(epoch: UInt64, sequence: UInt64, awaiting: Bool) -> (Violation.Kind, String)? {
        if posting >= 0 { cutShort.insert(postingKey) }
        defer { posting = -1 }
        let name = "ring \(ring) (\(producer)→\(consumer))"
        if epoch < producerEpoch {
            return (.protocolError, "\(name): restarted producer attaches in epoch \(epoch), before epoch \(producerEpoch) it had published")
        }
        // A reset the crash interrupted after its epoch was published.
        if epoch > producerEpoch { reset(to: epoch) }
        if awaiting { if posting >= 0 { next = posting }; return nil }
        let returned = lastReturned.flatMap { $0.epoch == epoch ? $0.sequence : nil } ?? 0
        if sequence < returned {
            return (.lost, "\(name): restarted producer resumes at sequence \(sequence) of epoch \(epoch), before \(returned) whose post had returned: it will overwrite a message not yet consumed")
        }
        if sequence > returned + (posting >= 0 ? 1 : 0) {
            return (.duplicated, "\(name): restarted producer resumes at sequence \(sequence), past the last one posted (\(returned))")
        }
        if posting >= 0 { next = sequence > returned ? posting + 1 : posting }
        lastReturned = (epoch, sequence)
        return nil
    }

    /// Whether a slot the consumer refused (CRC) is one a crash cut short.
    func wasCutShort(epoch: UInt64, sequence: UInt64, producerCrashed: Bool) -> Bool {
        let k = Self.key(epoch, sequence)
        return cutShort.contains(k) || (producerCrashed && posting >= 0 && postingKey == k)
    }

    /// A restarted consumer attached and resumed after `sequence` of `epoch`.
    func consumerRestarted(epoch: UInt64, sequence: UInt64) -> (Violation.Kind, String)? {
        let name = "ring \(ring) (\(producer)→\(consumer))"
        if epoch == acknowledged.epoch && sequence < acknowledged.sequence {
            return (.duplicated, "\(name): restarted consumer resumes after \(sequence), before its published acknowledgement \(acknowledged.sequence)")
        }
        deliveryEpoch = epoch
        lastDelivered = sequence > 0 ? (indexAt[Self.key(epoch, sequence)] ?? -1) : (epochStart[epoch] ?? 0) - 1
        return nil
    }

    /// Messages posted and never delivered without a reset to account for it.
    func lost() -> [Int] {
        (0..<min(next, messages)).filter { !delivered[$0] && $0 >= discardBelow }
    }
}
