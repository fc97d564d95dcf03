#if canImport(Glibc)
import Glibc
#endif
import PlenumMemory

/// Adaptive polling for rings (SPEC.md §5.7). There are no cross-node
/// interrupts, so a waiter polls; on 2 cores several pollers must not starve
/// each other, so it spins briefly, then yields, then sleeps with exponential
/// back-off up to a cap. `busySpin` never sleeps: benchmarks only.
public struct Backoff: Sendable {
    public enum Mode: String, Sendable { case adaptive, busySpin = "busy-spin" }

    public var mode: Mode
    public var spins: Int
    public var yields: Int
    public var maxSleepNanos: Int
    @usableFromInline var idleRounds = 0

    public init(mode: Mode = .adaptive, spins: Int = 200, yields: Int = 50, maxSleepNanos: Int = 200_000) {
        self.mode = mode
        self.spins = spins
        self.yields = yields
        self.maxSleepNanos = maxSleepNanos
    }

    /// Call after work was found.
    @inlinable public mutating func reset() { idleRounds = 0 }

    /// Call after a poll found nothing.
    @inlinable public mutating func idle() {
        idleRounds &+= 1
        if mode == .busySpin || idleRounds <= spins { CPU.relax(); return }
        if idleRounds <= spins + yields { sched_yield(); return }
        let shift = min(idleRounds - spins - yields, 20)
        var ts = timespec(tv_sec: 0, tv_nsec: min(1_000 << shift, maxSleepNanos))
        nanosleep(&ts, nil)
    }
}
