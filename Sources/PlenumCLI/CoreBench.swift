import ArgumentParser
import Foundation
import PlenumMemory
import PlenumStore

/// `plenum bench core`: the store core's costs that must not grow with the
/// store (SPEC §9.1, §9.4) — one create that evicts n objects, and one seal
/// with many blocking gets waiting — each beside its baseline (the same
/// operation with nothing to evict / nobody waiting), in one run. Medians
/// of `--repeats` fresh cores; setup is not timed.
struct CoreBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "core", abstract: "Store-core costs: eviction of many objects in one create, a seal with many waiters.")
    @Option(help: "Repeats per row (median reported).") var repeats = 5
    @Option(help: "Object counts for the eviction rows.") var evict: [Int] = [1_000, 4_000, 16_000, 64_000]
    @Option(help: "Blocking gets (each on 4,096 ids) for the seal row.") var waiters = 1_600
    @Flag var json = false

    struct Row { var name: String; var nanos: Double; var baseline: Double; var perItem: Double? }

    static func id(_ n: Int) -> ObjectID {
        var b = [UInt8](repeating: 0x5E, count: 20)
        for i in 0..<8 { b[i] = UInt8(truncatingIfNeeded: n >> (8 * i)) }
        return ObjectID(bytes: b)!
    }

    static func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }

    /// Time of `body` on a fresh core from `setup`, median of `repeats`.
    func measure(_ setup: () -> StoreCore, _ body: (inout StoreCore) -> Void) -> Double {
        Self.median((0..<repeats).map { _ in
            var core = setup()
            let t0 = monotonicNanos()
            body(&core)
            return Double(monotonicNanos() - t0)
        })
    }

    /// A core of n 64-byte objects, sealed, filling its memory.
    static func full(_ n: Int) -> StoreCore {
        var core = StoreCore(config: .init(base: 4096, capacity: n * 64, lineSize: 64))
        _ = core.handle(.connected(1), now: 0)
        for i in 0..<n {
            _ = core.handle(.request(1, requestId: 1, .create(id(i), dataSize: 64, metadataSize: 0)), now: 0)
            _ = core.handle(.request(1, requestId: 2, .seal(id(i), digest: 0)), now: 0)
        }
        return core
    }

    func run() throws {
        var rows: [Row] = []
        for n in evict {
            // One create of the whole capacity: every object is evicted.
            let t = measure({ Self.full(n) }) { core in
                let out = core.handle(.request(1, requestId: 3, .create(Self.id(-1), dataSize: n * 64, metadataSize: 0)), now: 0)
                precondition(out.contains { if case .reply(_, _, .created) = $0 { return true } else { return false } })
            }
            let base = measure({
                var c = StoreCore(config: .init(base: 4096, capacity: n * 64, lineSize: 64))
                _ = c.handle(.connected(1), now: 0)
                return c
            }) { core in _ = core.handle(.request(1, requestId: 3, .create(Self.id(-1), dataSize: n * 64, metadataSize: 0)), now: 0) }
            rows.append(Row(name: "create evicting \(n) objects", nanos: t, baseline: base, perItem: (t - base) / Double(n)))
        }
        // Seal of one id that `waiters` gets (16 per client, the per-client
        // bound) wait for, each on 4,096 ids; baseline: the same seal, nobody waiting.
        let ids = (0..<4096).map { Self.id(1_000_000 + $0) }
        /// `w` blocking gets (16 per client, the per-client bound), get g
        /// waiting for `on(g)`; the id to seal created, not sealed.
        func waiting(_ w: Int, on: (Int) -> [ObjectID]) -> StoreCore {
            var core = StoreCore(config: .init(base: 4096, capacity: 1 << 20, lineSize: 64))
            _ = core.handle(.connected(1), now: 0)
            for g in 0..<w {
                let c = ClientID(100 + g / 16)
                if g % 16 == 0 { _ = core.handle(.connected(c), now: 0) }
                _ = core.handle(.request(c, requestId: UInt64(g + 1), .get(on(g), timeoutMs: -1)), now: 0)
            }
            _ = core.handle(.request(1, requestId: 1, .create(ids[0], dataSize: 64, metadataSize: 0)), now: 0)
            return core
        }
        func withWaiters(_ w: Int) -> StoreCore { waiting(w) { _ in ids } }
        let seal = measure({ withWaiters(waiters) }) { core in _ = core.handle(.request(1, requestId: 2, .seal(ids[0], digest: 0)), now: 0) }
        let sealBase = measure({ withWaiters(0) }) { core in _ = core.handle(.request(1, requestId: 2, .seal(ids[0], digest: 0)), now: 0) }
        rows.append(Row(name: "seal, \(waiters) gets × 4096 ids waiting", nanos: seal, baseline: sealBase, perItem: (seal - sealBase) / Double(max(1, waiters))))
        // The index's point: a seal of an id nobody waits for, while
        // `waiters` gets wait for other ids (a scan would visit them all).
        func othersWaiting(_ w: Int) -> StoreCore { waiting(w) { g in (0..<8).map { Self.id(2_000_000 + g * 8 + $0) } } }
        let other = measure({ othersWaiting(waiters) }) { core in _ = core.handle(.request(1, requestId: 2, .seal(ids[0], digest: 0)), now: 0) }
        rows.append(Row(name: "seal, \(waiters) gets waiting on other ids", nanos: other, baseline: sealBase, perItem: nil))
        if json {
            let doc = rows.map { r -> [String: Any] in
                var d: [String: Any] = ["row": r.name, "median_ns": r.nanos, "baseline_ns": r.baseline, "ratio": r.nanos / r.baseline]
                if let p = r.perItem { d["per_item_ns"] = p }
                return d
            }
            print(String(decoding: try JSONSerialization.data(withJSONObject: ["repeats": repeats, "rows": doc], options: [.sortedKeys]), as: UTF8.self))
            return
        }
        print("row                                        median       baseline     ratio   per object/waiter")
        for r in rows {
            let us = { (ns: Double) in String(format: "%10.1f µs", ns / 1000) }
            print(r.name.padding(toLength: 42, withPad: " ", startingAt: 0), us(r.nanos), us(r.baseline),
                  String(format: "%8.1f×", r.nanos / r.baseline), r.perItem.map { String(format: "%8.0f ns", $0) } ?? "")
        }
        print("(baselines: the same create with nothing to evict; the same seal with nobody waiting. Linear eviction shows as a flat per-object cost.)")
    }
}
