import CURing  // MSG_DONTWAIT in release builds (see PeerLinks.swift)
import Glibc
import Logging
import PlenumCluster
import PlenumWire
import Synchronization

/// The peer-transport seam (SPEC §10.11): what carries the §10.5 messages
/// between stores when the cluster file says `transport = "grpc-…"`. The
/// rings need no carrier (`PeerLinks` posts to them itself); every other
/// transport is one of these, registered by the executable that links it
/// (`plenum-grpc`, Baseline/), so the core's build never compiles gRPC.
///
/// Liveness stays in shared memory whatever the carrier: hellos and
/// heartbeats go through the link blocks (§10.3), so `ClusterCore` sees the
/// same `peerUp`/`peerDown` events. A carrier only moves messages.
///
/// Threads: `send` is called on the daemon's loop thread and must not block;
/// a carrier runs its own threads and hands what arrives to `inbox`.
public protocol PeerCarrier: AnyObject, Sendable {
    /// Queues one message for `node`. Never blocks; a message that cannot
    /// be delivered is dropped (its request times out, as on a ring).
    func send(_ message: PeerMessage, correlation: UInt64, to node: NodeID)
    /// Stops serving and connecting; called once, on the loop thread.
    func stop()
    /// Counters for `plenum status`: name → value.
    var counters: [String: Int] { get }
}

/// What a carrier is made from.
public struct PeerCarrierContext: Sendable {
    public let config: ClusterConfig
    public let me: NodeID
    public let inbox: PeerInbox
    public let logger: Logger
}

/// Carriers by transport, registered before the daemon starts.
public enum PeerCarriers {
    public typealias Factory = @Sendable (PeerCarrierContext) throws -> PeerCarrier
    static let factories = Mutex<[PeerTransport: Factory]>([:])

    public static func register(_ transport: PeerTransport, _ factory: @escaping Factory) {
        factories.withLock { $0[transport] = factory }
    }

    /// Benchmarks: `count` sequential pings of the carrier endpoint at
    /// `address` (host:port) from this process, each one's time in ns.
    public typealias Pinger = @Sendable (_ address: String, _ count: Int) throws -> [UInt64]
    static let pingers = Mutex<[PeerTransport: Pinger]>([:])

    public static func registerPinger(_ transport: PeerTransport, _ pinger: @escaping Pinger) {
        pingers.withLock { $0[transport] = pinger }
    }

    public static func pinger(_ transport: PeerTransport) -> Pinger? { pingers.withLock { $0[transport] } }

    /// The transports this binary can run: the rings, and what is registered.
    public static var available: [PeerTransport] {
        [.rings] + factories.withLock { f in PeerTransport.allCases.filter { f[$0] != nil } }
    }

    static func make(_ transport: PeerTransport, _ context: PeerCarrierContext) throws -> PeerCarrier {
        guard let f = factories.withLock({ $0[transport] }) else {
            throw DaemonError.badOption(
                "the cluster file asks for transport \"\(transport.rawValue)\", which this binary does not have: run `plenum-grpc` from the gRPC baseline (README: \"The gRPC baseline\"), or use transport = \"rings\"")
        }
        return try f(context)
    }
}

/// Messages a carrier received, waiting for the loop thread; wakes the loop
/// through its own doorbell socket (SPEC §10.3) when it sleeps.
///
/// ```
///   carrier threads ──deliver──▶ [ queue | sleeping ] ──take──▶ loop thread
///                      (if sleeping: one datagram to the bell)
/// ```
/// No lost wake-up: `deliver` reads `sleeping` under the same lock it
/// appends under, and the loop polls once more after `setSleeping(true)`.
public final class PeerInbox: Sendable {
    struct State {
        var queue: [(NodeID, UInt64, PeerMessage)] = []
        var head = 0
        var sleeping = false
        var dropped = 0
    }
    let state = Mutex(State())
    let bell: String
    let bellSender: Int32
    /// Messages held at most; beyond, the loop is not keeping up and new
    /// ones are dropped (counted), as a full ring's queue does.
    public static let bound = 1 << 16

    public init(bell: String) {
        self.bell = bell
        bellSender = socket(AF_UNIX, 2 /* SOCK_DGRAM */ | 0o2000000 /* SOCK_CLOEXEC */, 0)
    }

    deinit { if bellSender >= 0 { close(bellSender) } }

    /// From any thread: one message from `node`.
    public func deliver(_ message: PeerMessage, correlation: UInt64, from node: NodeID) {
        let wake = state.withLock { s -> Bool in
            guard s.queue.count - s.head < Self.bound else { s.dropped += 1; return false }
            s.queue.append((node, correlation, message))
            return s.sleeping
        }
        if wake {
            var byte: UInt8 = 1
            _ = try? UnixSocket.withAddress(bell) { addr, len in sendto(bellSender, &byte, 1, Int32(MSG_DONTWAIT), addr, len) }
        }
    }

    /// On the loop thread: up to `max` messages, oldest first.
    func take(max: Int, _ body: (NodeID, UInt64, PeerMessage) -> Void) -> Int {
        let batch: ArraySlice<(NodeID, UInt64, PeerMessage)> = state.withLock { s in
            let end = min(s.queue.count, s.head + max)
            let out = s.queue[s.head..<end]
            s.head = end
            if s.head == s.queue.count { s.queue.removeAll(keepingCapacity: true); s.head = 0 }
            return out
        }
        for (n, c, m) in batch { body(n, c, m) }
        return batch.count
    }

    func setSleeping(_ sleeping: Bool) { state.withLock { $0.sleeping = sleeping } }
    var dropped: Int { state.withLock { $0.dropped } }
}
