/// What a node's failure detector knows of one directly linked peer (SPEC
/// §10.3 "Death", "Hello and incarnations"), with no I/O: the daemon's
/// links (`PeerLinks`) and the simulator's cluster scenario (§7.6) run
/// these same rules. Times are the caller's monotonic nanoseconds.
///
/// ```
///            hello(i), line shows i          silent > deadAfter
///  waiting ─────────────────────────▶ up(i) ───────────────────▶ fenced(i)
///     ▲  line shows a new life j ≠ i    │                            │
///     └─────────────────────────────────┴────────────────────────────┘
///                                         (only a new life lifts a fence)
/// ```
public struct PeerWatch: Sendable, Equatable {
    public enum State: Equatable, Sendable { case waiting, up(UInt64), fenced(UInt64) }
    public var state = State.waiting
    /// The incarnation last read on the peer's heartbeat line (0: none yet).
    public var seen: UInt64 = 0
    public var lastBeat: UInt64 = 0
    /// When the beat last changed, the incarnation first appeared, or the
    /// hello was accepted.
    public var lastBeatAt: UInt64 = 0
    /// A hello whose incarnation the heartbeat line did not show yet.
    public var pendingHello: UInt64 = 0

    public init() {}

    public var isUp: Bool { if case .up = state { return true } else { return false } }

    /// What a valid reading of the heartbeat line showed.
    public enum Reading: Equatable, Sendable {
        case same
        /// The first incarnation this link ever read.
        case firstSight
        /// Another incarnation than the last seen: the peer restarted. The
        /// link now waits (the caller detaches it); `wasUp`: the core must
        /// get `peerDown`.
        case newLife(wasUp: Bool)
    }

    /// A tick's valid reading (CRC good, beat and incarnation > 0) of the
    /// peer's heartbeat line. An invalid reading is not passed: it counts as
    /// silence.
    public mutating func observe(incarnation: UInt64, beat: UInt64, now: UInt64) -> Reading {
        guard incarnation == seen else {
            let first = seen == 0, wasUp = isUp
            seen = incarnation
            lastBeat = beat
            lastBeatAt = now
            if first { return .firstSight }
            state = .waiting
            return .newLife(wasUp: wasUp)
        }
        if beat != lastBeat {
            lastBeat = beat
            lastBeatAt = now
        }
        return .same
    }

    /// The death rule: an up peer whose beat has not moved for more than
    /// `deadAfter` is fenced with its incarnation. Returns how long it was
    /// silent when it was fenced now.
    public mutating func fenceIfSilent(now: UInt64, deadAfter: UInt64) -> UInt64? {
        guard isUp, now &- lastBeatAt > deadAfter else { return nil }
        state = .fenced(seen)
        return now &- lastBeatAt
    }

    public enum HelloVerdict: Equatable, Sendable {
        /// The line does not show that incarnation yet: kept as `pendingHello`.
        case pending
        /// The link is fenced with that incarnation: dropped.
        case refused
        /// That incarnation is up already: ignored.
        case already
        /// To accept (the caller then calls `up`): `newLife` — another life
        /// than the last seen one said hello before a tick read its line;
        /// `wasUp` — the core must get `peerDown` first.
        case accept(newLife: Bool, wasUp: Bool)
    }

    /// A `hello(incarnation)` arrived; `line` is what the heartbeat line
    /// reads now (nil: invalid).
    public mutating func hello(_ incarnation: UInt64, line: (incarnation: UInt64, beat: UInt64)?) -> HelloVerdict {
        guard let line, line.incarnation == incarnation else {
            pendingHello = incarnation
            return .pending
        }
        pendingHello = 0
        if case .fenced(let f) = state, f == incarnation { return .refused }
        if state == .up(incarnation) { return .already }
        return .accept(newLife: seen != 0 && seen != incarnation, wasUp: isUp)
    }

    /// An accepted hello: the link is up with `incarnation`, its silence
    /// measured from now.
    public mutating func up(_ incarnation: UInt64, beat: UInt64, now: UInt64) {
        seen = incarnation
        lastBeat = beat
        lastBeatAt = now
        state = .up(incarnation)
    }
}
