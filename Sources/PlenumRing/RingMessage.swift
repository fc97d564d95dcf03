/// A delivered message. `payload` points into the slot (zero-copy on real
/// memory) and is valid only inside the `poll` closure that received it.
public struct RingMessage {
    public let sequence: UInt64
    public let kind: UInt16
    public let flags: UInt16
    public let requestId: UInt64
    public let payload: UnsafeRawBufferPointer

    @inlinable init(sequence: UInt64, kind: UInt16, flags: UInt16, requestId: UInt64, payload: UnsafeRawBufferPointer) {
        self.sequence = sequence
        self.kind = kind
        self.flags = flags
        self.requestId = requestId
        self.payload = payload
    }
}

/// What a post did. `.full` is backpressure, not an error: nothing was
/// written; retry after the consumer has made progress.
public enum PostResult: Equatable, Sendable {
    /// Published with this sequence number (1-based, per epoch).
    case posted(sequence: UInt64)
    /// All slots hold messages the consumer has not acknowledged.
    case full
    /// A reset (SPEC §5.6) awaits the consumer's acknowledgement.
    case resetPending
}

/// Why a slot was not delivered (SPEC §5.5). Reported once per event.
public enum RingCorruption: Equatable, Sendable, CustomStringConvertible {
    /// Commit word neither the expected sequence, an old lap, nor zero.
    case badSequence(found: UInt64, expected: UInt64)
    /// The committed slot's length exceeds the ring's payload limit.
    case badLength(sequence: UInt64, length: UInt32)
    /// The committed slot carries another epoch.
    case staleEpoch(sequence: UInt64, found: UInt32)
    /// CRC32C over header and payload does not match.
    case checksum(sequence: UInt64)
    /// The producer line's epoch went backwards.
    case badEpoch(found: UInt64, current: UInt64)

    public var description: String {
        switch self {
        case .badSequence(let f, let e): return "slot commit word \(f) where \(e) (or an older lap) was expected"
        case .badLength(let s, let l): return "message \(s) declares \(l) payload bytes, beyond the slot"
        case .staleEpoch(let s, let f): return "message \(s) carries epoch \(f), not the ring's"
        case .checksum(let s): return "message \(s) fails its CRC32C"
        case .badEpoch(let f, let c): return "producer epoch \(f) is older than the ring's \(c)"
        }
    }
}

/// Outcome of one poll.
public enum PollResult<R> {
    case empty
    case delivered(R)
    /// Not delivered, counted in ``RingStats``. A corrupt committed slot is
    /// skipped; a corrupt commit word stalls the ring until a reset.
    case corrupt(RingCorruption)
}

/// Consumer-side counters (private memory).
public struct RingStats: Equatable, Sendable {
    public var delivered: UInt64 = 0
    public var corrupt: UInt64 = 0
    public var skipped: UInt64 = 0
    public var emptyPolls: UInt64 = 0
    public var acksPublished: UInt64 = 0
    public var resets: UInt64 = 0
    public init() {}
}
