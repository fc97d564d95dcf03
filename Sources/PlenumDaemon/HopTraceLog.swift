import PlenumMemory
import PlenumWire

/// The store's hop trace (SPEC §9.2 0x17 `hopTrace`): off unless a client
/// started it, then every client frame in and reply out, every peer message
/// posted and taken, every wake and bell, stamped with CLOCK_MONOTONIC.
/// Loop thread only. Bounded: what does not fit one reply is counted, not kept.
final class HopTraceLog {
    private(set) var on = false
    private var events: [HopEvent] = []
    private var dropped = 0

    @inline(__always)
    func record(_ what: HopEvent.What, kind: UInt16, key: UInt64, client: UInt64 = 0, peer: UInt32 = 0) {
        guard on else { return }
        guard events.count < HopEvent.maxPerReply else { dropped += 1; return }
        events.append(HopEvent(nanos: monotonicNanos(), what: what, kind: kind, key: key, client: client, peer: peer))
    }

    /// What was recorded since the last start (and how many were not
    /// kept); recording continues only if `on`.
    func take(andTurn on: Bool) -> (events: [HopEvent], dropped: Int) {
        defer { events = []; dropped = 0; self.on = on }
        return (events, dropped)
    }

    /// The type of an encoded client frame (bytes 4–5, SPEC §9.2).
    static func frameKind(_ frame: [UInt8]) -> UInt16 {
        frame.count >= 6 ? UInt16(frame[4]) | UInt16(frame[5]) << 8 : 0
    }
}
