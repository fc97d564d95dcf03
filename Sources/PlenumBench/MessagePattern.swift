/// Deterministic message contents for exchanges, tests and benches: the
/// payload of message `index` on stream `stream` is a function of both, so a
/// receiver verifies every byte without sharing state with the sender.
public struct MessagePattern: Sendable {
    public let stream: UInt64
    public let maxLength: Int

    public init(stream: UInt64, maxLength: Int) {
        self.stream = stream
        self.maxLength = maxLength
    }

    @inlinable static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Length of message `index`: varies over [0, maxLength] so single-line
    /// and multi-line slots both occur.
    @inlinable public func length(of index: UInt64) -> Int {
        maxLength == 0 ? 0 : Int(Self.mix(stream ^ (index &* 31)) % UInt64(maxLength + 1))
    }

    /// Visits byte k of message `index` for k in 0..<count, in order, until
    /// `body` returns false. The one definition of a message's bytes.
    @inlinable func bytes(of index: UInt64, count: Int, _ body: (Int, UInt8) -> Bool) {
        var state = Self.mix(stream &+ index)
        var i = 0
        while i < count {
            state = Self.mix(state)
            var word = state
            for _ in 0..<8 where i < count {
                guard body(i, UInt8(truncatingIfNeeded: word)) else { return }
                word >>= 8
                i += 1
            }
        }
    }

    @inlinable public func fill(_ buffer: UnsafeMutableRawBufferPointer, index: UInt64) {
        bytes(of: index, count: buffer.count) { i, b in buffer[i] = b; return true }
    }

    /// Whether `payload` is exactly message `index`: its length and bytes.
    @inlinable public func matches(_ payload: UnsafeRawBufferPointer, index: UInt64) -> Bool {
        payload.count == length(of: index) && contentMatches(payload, index: index)
    }

    /// Whether `payload`'s bytes are those of message `index` (any length).
    @inlinable public func contentMatches(_ payload: UnsafeRawBufferPointer, index: UInt64) -> Bool {
        var same = true
        bytes(of: index, count: payload.count) { i, b in same = payload[i] == b; return same }
        return same
    }
}

/// Counts what a receiver saw against the sender's 0, 1, 2, … ids.
///
/// Each received id is counted once, in exactly one class (SPEC §6, `ring
/// drain`): the next expected id is in order; an id above it opens a gap whose
/// ids are `lost`; an id inside a remembered gap arrived late: it leaves
/// `lost` and counts as `reordered`; any other id below the next expected one
/// was seen before: `duplicated`. At most ``maxGaps`` gaps are remembered
/// (the lowest is forgotten first; its ids stay lost, and a late one counts
/// as duplicated), so memory stays bounded whatever a corrupt sender does.
public struct DeliveryCheck: Sendable, Codable, Equatable {
    public var received: UInt64 = 0
    public var lost: UInt64 = 0
    public var duplicated: UInt64 = 0
    public var reordered: UInt64 = 0
    public var corrupt: UInt64 = 0
    public var nextExpected: UInt64 = 0
    /// Gaps not yet filled, ascending and disjoint: `[lower, upper)` each.
    @usableFromInline var gaps: [Gap] = []

    public static let maxGaps = 1024

    @usableFromInline struct Gap: Sendable, Equatable {
        @usableFromInline var lower: UInt64
        @usableFromInline var upper: UInt64
        @usableFromInline init(lower: UInt64, upper: UInt64) { self.lower = lower; self.upper = upper }
    }

    /// The report's keys; the gap list is working state, not reported.
    enum CodingKeys: String, CodingKey { case received, lost, duplicated, reordered, corrupt, nextExpected }

    public init() {}

    /// Records message `id`; `intact` is false when its payload mismatched.
    @inlinable public mutating func observe(id: UInt64, intact: Bool) {
        received &+= 1
        if !intact { corrupt &+= 1 }
        if id == nextExpected { nextExpected &+= 1; return }
        if id > nextExpected {
            lost &+= id - nextExpected
            if gaps.count >= Self.maxGaps { gaps.removeFirst() }
            gaps.append(Gap(lower: nextExpected, upper: id))
            nextExpected = id &+ 1
            return
        }
        // Below the next expected id: late (inside a gap) or seen before.
        var lo = 0, hi = gaps.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if gaps[mid].upper <= id { lo = mid + 1 } else { hi = mid }
        }
        guard lo < gaps.count, gaps[lo].lower <= id else { duplicated &+= 1; return }
        lost &-= 1
        reordered &+= 1
        let g = gaps[lo]
        switch (id == g.lower, id == g.upper - 1) {
        case (true, true): gaps.remove(at: lo)
        case (true, false): gaps[lo].lower = id + 1
        case (false, true): gaps[lo].upper = id
        case (false, false):
            gaps[lo].upper = id
            gaps.insert(Gap(lower: id + 1, upper: g.upper), at: lo + 1)
            if gaps.count > Self.maxGaps { gaps.removeFirst() }
        }
    }

    public var clean: Bool { lost == 0 && duplicated == 0 && reordered == 0 && corrupt == 0 }
}
