import PlenumMemory

/// The floor of any cross-process message (SPEC.md §8): a bare ping-pong of
/// one 8-byte counter per direction, each in its own line, no ring, no
/// checksum. `flushed` adds the protocol's minimum: flush + fence after every
/// store, invalidate + fence before every poll.
///
/// ```
///   line 0 (initiator writes): ping = i      line 1 (responder writes): pong = i
/// ```
public enum Floor {
    /// Initiator side: returns one round-trip time (ns) per iteration.
    @inlinable
    public static func initiate<M: SharedMemory>(_ memory: M, at base: Int, iterations: Int, first: UInt64,
                                                 flushed: Bool, record: (UInt64) -> Void) {
        let ping = base, pong = base + memory.lineSize
        for n in 0..<UInt64(iterations) {
            let i = first &+ n
            let t0 = monotonicNanos()
            memory.store64(i, at: ping, ordering: .releasing)
            if flushed { memory.flush(at: ping, count: 8); memory.fence(.store) }
            while true {
                if flushed { memory.invalidate(at: pong, count: 8); memory.fence(.full) }
                if memory.load64(at: pong, ordering: .acquiring) == i { break }
                CPU.relax()
            }
            record(monotonicNanos() &- t0)
        }
    }

    /// Responder side: echoes `iterations` pings.
    @inlinable
    public static func respond<M: SharedMemory>(_ memory: M, at base: Int, iterations: Int, first: UInt64, flushed: Bool) {
        let ping = base, pong = base + memory.lineSize
        for n in 0..<UInt64(iterations) {
            let i = first &+ n
            while true {
                if flushed { memory.invalidate(at: ping, count: 8); memory.fence(.full) }
                if memory.load64(at: ping, ordering: .acquiring) == i { break }
                CPU.relax()
            }
            memory.store64(i, at: pong, ordering: .releasing)
            if flushed { memory.flush(at: pong, count: 8); memory.fence(.store) }
        }
    }
}
