/// How the store's loop waits between messages (SPEC §10.1 "Waiting",
/// §10.3 "No bells"): a pure decision from the time since the last ring
/// message and whether an answer is expected, so it can be tested alone.
/// (The daemon reads tuning overrides from PLENUM_BUSY_SPIN_NS,
/// PLENUM_SPIN_NS and PLENUM_IDLE_SPIN_NS, for experiments.)
///
/// ```
///  adaptive:  message ─┬─ spin (PAUSE) ─┬─ yield at every empty poll ─────────────┬─ sleep
///                      0          busySpin     expecting ? expectingWindow : idleWindow
///             asleep with bells off: woken after idle/8, within [20 µs, 10 ms]
///  dedicated: message ── spin (PAUSE), pinned, forever
/// ```
public struct WaitPolicy: Equatable, Sendable {
    public enum Step: Equatable, Sendable {
        /// Poll again at once (a PAUSE between polls).
        case spin
        /// Offer the CPU (sched_yield), then poll again.
        case yield
        /// Publish "sleeping" and block in io_uring; with a time, also wake
        /// then to poll the peer rings (nobody will ring the bell).
        case sleep(pollAfter: UInt64?)
    }

    public var mode: WaitMode
    public var bells: Bool
    /// PAUSE-only spinning after a message (adaptive). 0 by default: on a
    /// host with fewer CPUs than busy processes a PAUSE spinner keeps the
    /// CPU from the very process it waits for until the scheduler preempts
    /// it (tens of µs), so every empty poll yields instead.
    public var busySpin: UInt64
    /// Keep polling this long after the last message while this store waits
    /// for a peer's answer (a request of its own is outstanding)…
    public var expectingWindow: UInt64
    /// …and this long when it waits for nothing: a client's next request,
    /// or the next of a series of peer requests, comes within tens of µs;
    /// anything later can ring.
    public var idleWindow: UInt64
    public static let idlePollMin: UInt64 = 20_000
    public static let idlePollMax: UInt64 = 10_000_000

    public init(mode: WaitMode, bells: Bool, busySpin: UInt64 = 0, expectingWindow: UInt64 = 200_000, idleWindow: UInt64 = 100_000) {
        self.mode = mode
        self.bells = bells
        self.busySpin = busySpin
        self.expectingWindow = expectingWindow
        self.idleWindow = idleWindow
    }

    public func step(idleFor idle: UInt64, expecting: Bool, peers: Bool) -> Step {
        if mode == .dedicated { return .spin }
        if idle < busySpin { return .spin }
        if idle < (expecting ? expectingWindow : idleWindow) { return .yield }
        return .sleep(pollAfter: !bells && peers ? Self.idlePoll(idle) : nil)
    }

    /// With bells off a sleeping store polls after idle/8, clamped to
    /// [20 µs, 10 ms]: prompt right after traffic (125 µs after 1 ms of
    /// quiet), about 100 wake-ups a second once idle (each costs a store
    /// about 10 µs of CPU on a virtual machine: 500 a second made an idle
    /// 4-node cluster use 3% of a CPU, 200 a second 2.3%).
    public static func idlePoll(_ idle: UInt64) -> UInt64 { min(max(idle / 8, idlePollMin), idlePollMax) }
}
