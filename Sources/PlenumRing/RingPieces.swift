import PlenumMemory

/// Byte strings longer than a slot, carried as consecutive messages of one
/// ring (SPEC §9.6 "Frames larger than a slot"). Every message but the last
/// has kind `more` (2); the last — or only — one has kind `last` (1). A
/// receiver appends payloads until a `last` piece completes the string.
///
/// ```
///   frame (n bytes) ──► [kind 2: P bytes][kind 2: P bytes] … [kind 1: ≤ P bytes]
///                       P = the ring's maxPayload; requestId 0, flags 0
/// ```
public enum RingPieces {
    public static let last: UInt16 = 1
    public static let more: UInt16 = 2

    /// Posts `bytes[start...]` piece by piece while the ring has room.
    /// Returns the offset reached: `bytes.count` when the last piece is
    /// posted; less when the ring filled up (post the rest later, from
    /// there, before anything else on this ring).
    public static func post<M: SharedMemory>(_ bytes: [UInt8], from start: Int,
                                             into producer: inout RingProducer<M>) throws(RingError) -> Int {
        assert(start >= 0 && start <= bytes.count)
        let piece = producer.layout.maxPayload
        var offset = start
        repeat {
            let end = min(bytes.count, offset + piece)
            let kind = end == bytes.count ? last : more
            let from = offset
            let r = try producer.post(kind: kind, requestId: 0, length: end - from) { dst in
                bytes.withUnsafeBytes { dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[from..<end])) }
            }
            guard case .posted = r else { return offset }
            offset = end
        } while offset < bytes.count
        return offset
    }
}

/// Collects the pieces of one string at a time (SPEC §9.6). Bounded: a
/// string longer than `limit` is refused as soon as its pieces pass it.
public struct PieceAssembler {
    public enum Outcome: Equatable {
        /// A whole string arrived.
        case complete([UInt8])
        /// Nothing complete yet: a piece was kept, or a piece of a refused
        /// string was skipped.
        case partial
        /// The pieces so far exceed `limit`: they are dropped, and so are the
        /// rest of that string's pieces (reported once).
        case tooLong(Int)
        /// A kind other than 1 and 2: the message and any pieces before it are dropped.
        case badKind(UInt16)
    }

    public let limit: Int
    var buffer: [UInt8] = []
    /// True while the pieces of a string longer than `limit` are skipped.
    var skipping = false

    public init(limit: Int) { self.limit = limit }

    /// Whether pieces of an incomplete string are held.
    public var isPartial: Bool { !buffer.isEmpty || skipping }

    public mutating func add(_ m: RingMessage) -> Outcome {
        switch m.kind {
        case RingPieces.last:
            // The end of a string already refused: nothing more to report.
            if skipping { skipping = false; return .partial }
            let n = buffer.count + m.payload.count
            guard n <= limit else { buffer = []; return .tooLong(n) }
            if buffer.isEmpty { return .complete(Array(m.payload)) }
            buffer.append(contentsOf: m.payload)
            defer { buffer = [] }
            return .complete(buffer)
        case RingPieces.more:
            if skipping { return .partial }
            guard buffer.count + m.payload.count <= limit else {
                let n = buffer.count + m.payload.count
                buffer = []
                skipping = true
                return .tooLong(n)
            }
            buffer.append(contentsOf: m.payload)
            return .partial
        default:
            buffer = []
            skipping = false
            return .badKind(m.kind)
        }
    }
}
