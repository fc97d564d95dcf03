import PlenumMemory
import PlenumRing

/// The `ring-exchange` scenario: the production `RingProducer` and
/// `RingConsumer` on two nodes, each ring in its consumer's region, many
/// messages both ways under random faults (SPEC.md §7.6).
///
/// ```
///  region 0 (owner node 0): ring "1→0"      region 1 (owner node 1): ring "0→1"
///  node 0: produces 0→1, consumes 1→0       node 1: produces 1→0, consumes 0→1
/// ```
/// Checked on every delivery: it equals message `index` of its ring (length
/// and every byte), `index` is the next expected one (in order, exactly once),
/// and the ring reported no corruption (a checksum failure with no injected
/// corruption is a protocol bug the checksum must not hide). At a crash-free,
/// unbudgeted end every posted message was delivered.
struct RingExchange {
    var messages = 40
    var slots = 4
    var slotLines = 2

    func run(_ sim: Simulation) {
        let line = sim.config.lineSize
        let slotSize = slotLines * line
        let probe = try! RingLayout(base: 0, lineSize: line, slotCount: slots, slotSize: slotSize)
        let regionBytes = (probe.totalBytes + line - 1) / line * line
        sim.setUpMemory(regions: [(regionBytes, 0), (regionBytes, 1)])
        // ring r carries node r → node 1-r and lives in region 1-r.
        let layouts = (0..<2).map { r in
            try! RingLayout(base: (1 - r) * regionBytes, lineSize: line, slotCount: slots, slotSize: slotSize,
                            sharedControlLine: sim.config.mutants.contains(.sharedControlLine))
        }
        for r in 0..<2 {
            sim.setUp(node: 1 - r) { Ring.format(layouts[r], producer: UInt32(r), consumer: UInt32(1 - r), in: $0) }
            // The single writer of each line, from the layout as designed.
            let intended = try! RingLayout(base: layouts[r].base, lineSize: line, slotCount: slots, slotSize: slotSize)
            let l0 = intended.base / line
            sim.mem.lineWriter[l0] = -1                                  // descriptor: immutable
            sim.mem.lineWriter[intended.producerLine / line] = r
            sim.mem.lineWriter[intended.consumerLine / line] = 1 - r
            for l in (intended.slotsOffset / line)..<((intended.base + intended.totalBytes) / line) { sim.mem.lineWriter[l] = r }
            // The consumer reads the producer line and the slots; the producer
            // reads the consumer line.
            if sim.prefetchable.isEmpty { sim.prefetchable = [[], []] }
            sim.prefetchable[1 - r] += [intended.producerLine / line] + Array((intended.slotsOffset / line)..<((intended.base + intended.totalBytes) / line))
            sim.prefetchable[r] += [intended.consumerLine / line]
        }
        let maxPayload = slotSize - RingLayout.slotHeaderBytes
        var delivered = [0, 0]
        var posted = [0, 0]
        // The message being posted: it may be delivered before `post` returns.
        var posting = [-1, -1]
        // With injected corruption a damaged slot is skipped: the next index may jump.
        var skipped = [0, 0]
        func payload(_ ring: Int, _ index: Int) -> [UInt8] {
            var z = UInt64(ring &* 1_000_003 &+ index) &* 0x9E37_79B9_7F4A_7C15
            let length = Int(z % UInt64(maxPayload + 1))
            return (0..<length).map { i in z = z &* 6364136223846793005 &+ 1442695040888963407; return UInt8(truncatingIfNeeded: z >> 33 ^ UInt64(i)) }
        }
        let programs: [(SimMemory) -> Void] = (0..<2).map { n in
            { memory in
                let out = n, inbound = 1 - n
                guard var producer = try? RingProducer(memory: memory, layout: layouts[out]) else {
                    sim.fail(.protocolError, node: n, line: -1, "producer could not attach"); return
                }
                var consumer = RingConsumer(memory: memory, layout: layouts[inbound], ackBatch: 2)
                while !sim.shouldStop(n) && (posted[out] < messages || delivered[inbound] < messages) {
                    var progress = false
                    if posted[out] < messages {
                        let bytes = payload(out, posted[out])
                        posting[out] = posted[out]
                        do {
                            let r = try bytes.withUnsafeBytes { try producer.post(kind: 1, requestId: UInt64(posted[out]), payload: $0) }
                            if case .posted = r { posted[out] += 1; progress = true }
                        } catch {
                            sim.fail(.protocolError, node: n, line: -1, "post failed: \(error)")
                        }
                    }
                    if delivered[inbound] < messages {
                        let result = consumer.poll { m in (Int(m.requestId), Array(m.payload)) }
                        switch result {
                        case .delivered(let (index, bytes)):
                            progress = true
                            let want = delivered[inbound]
                            if index < want { sim.fail(.duplicated, node: n, line: -1, "ring \(inbound): message \(index) delivered again (next expected \(want))") }
                            else if index > want && skipped[inbound] < index - want { sim.fail(.reordered, node: n, line: -1, "ring \(inbound): message \(index) delivered before \(want)") }
                            else if index >= posted[inbound] && index != posting[inbound] { sim.fail(.mismatch, node: n, line: -1, "ring \(inbound): message \(index) delivered before it was posted") }
                            else if bytes != payload(inbound, index) { sim.fail(.mismatch, node: n, line: -1, "ring \(inbound): message \(index) payload differs from what was posted") }
                            delivered[inbound] = index + 1
                        case .corrupt(let why):
                            progress = true
                            if sim.config.injectsCorruption { skipped[inbound] += 1; sim.corruptionsCaught += 1 } else {
                                sim.fail(why.isChecksum ? .checksum : .protocolError, node: n, line: -1, "ring \(inbound): \(why)")
                            }
                        case .empty: break
                        }
                    }
                    if !progress { sim.idle(n) }
                }
            }
        }
        sim.run(programs)
        // A crash-free run must deliver everything, quiet phase included.
        if sim.violation == nil, !sim.crashed.contains(true) {
            for r in 0..<2 where delivered[r] + skipped[r] < messages && !(sim.config.injectsCorruption && skipped[r] > 0) {
                sim.fail(.lost, node: 1 - r, line: -1, "ring \(r): \(messages - delivered[r]) posted message(s) never delivered")
            }
        }
    }
}

extension RingCorruption {
    var isChecksum: Bool { if case .checksum = self { return true } else { return false } }
}
