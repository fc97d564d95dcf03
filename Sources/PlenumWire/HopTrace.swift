/// One stamped hop of a traced operation (SPEC §9.2 0x17 `hopTrace`): what
/// a store did with a client frame or a peer message, and when
/// (CLOCK_MONOTONIC ns, comparable between processes of one host).
///
/// ```
///  0 ┌ nanos u64 ────────────────────────────────────────────────┐
///  8 │ key u64  (client request id, or peer message correlation) │
/// 16 │ client u64 (the store's client id; 0 for peer events)     │
/// 24 │ peer u32 (node of a peer event) │ kind u16 │ what u8 │ 0  │
///    └───────────────────────────────────────────────────────────┘  32 bytes
/// ```
public struct HopEvent: Equatable, Sendable {
    /// What happened (`what`).
    public enum What: UInt8, Sendable, CaseIterable {
        /// A client's request frame taken (ring poll or socket read); kind = frame type.
        case clientIn = 1
        /// A reply frame to a client posted (ring) or queued (socket); kind = frame type.
        case clientOut = 2
        /// A peer message posted to the ring towards `peer`; kind = message code.
        case peerOut = 3
        /// A peer message from `peer` taken from its ring; kind = message code.
        case peerIn = 4
        /// A `wake` frame sent to a sleeping ring client.
        case clientWake = 5
        /// A bell datagram sent to a sleeping peer.
        case peerBell = 6
    }

    public var nanos: UInt64
    public var key: UInt64
    public var client: UInt64
    public var peer: UInt32
    public var kind: UInt16
    public var what: What

    public static let bytes = 32
    /// Events one reply carries at most (a frame is at most 1 MiB).
    public static let maxPerReply = (Frame.maxBytes - Frame.headerBytes - 4) / bytes

    public init(nanos: UInt64, what: What, kind: UInt16, key: UInt64, client: UInt64 = 0, peer: UInt32 = 0) {
        self.nanos = nanos
        self.what = what
        self.kind = kind
        self.key = key
        self.client = client
        self.peer = peer
    }
}

extension Wire {
    /// `hopTrace` (0x17): on = 1 clears the store's trace and starts
    /// recording; on = 0 stops. Either way the reply (0x97) carries what was
    /// recorded since the last start, oldest first, and the store forgets it.
    public static func encodeHopTrace(on: Bool, requestId: UInt64) -> [UInt8] {
        Frame.build(.hopTrace, requestId: requestId) { $0.u8(on ? 1 : 0) }
    }

    public static func encodeHopTraceReply(_ events: ArraySlice<HopEvent>, dropped: Int, requestId: UInt64) -> [UInt8] {
        Frame.build(.hopTraceReply, requestId: requestId) { w in
            w.u32(UInt32(events.count))
            w.u32(UInt32(clamping: dropped))
            for e in events {
                w.u64(e.nanos); w.u64(e.key); w.u64(e.client); w.u32(e.peer); w.u16(e.kind); w.u8(e.what.rawValue); w.u8(0)
            }
        }
    }

    static func decodeHopTraceReply(_ r: inout WireReader) throws(WireError) -> (events: [HopEvent], dropped: Int) {
        let n = Int(try r.u32())
        let dropped = Int(try r.u32())
        guard n <= HopEvent.maxPerReply, n * HopEvent.bytes <= r.remaining else { throw .badValue("\(n) hop events") }
        var events: [HopEvent] = []
        events.reserveCapacity(n)
        for _ in 0..<n {
            let nanos = try r.u64(), key = try r.u64(), client = try r.u64(), peer = try r.u32(), kind = try r.u16()
            let raw = try r.u8()
            guard try r.u8() == 0, let what = HopEvent.What(rawValue: raw) else { throw .badValue("hop event kind \(raw)") }
            events.append(HopEvent(nanos: nanos, what: what, kind: kind, key: key, client: client, peer: peer))
        }
        guard r.remaining == 0 else { throw .trailingBytes(r.remaining) }
        return (events, dropped)
    }
}
