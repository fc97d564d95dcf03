import PlenumMemory
import PlenumRing
import Testing

/// Frames longer than a slot, in pieces (SPEC §9.6).
@Suite struct RingPiecesTests {
    /// Posts what fits, drains, repeats: the producer resumes at the offset
    /// it reached, the consumer sees each frame whole and in order.
    @Test func framesLongerThanTheRingArriveWholeAndInOrder() throws {
        let f = try RingFixture(slots: 8, slotSize: 256)   // 224 payload bytes a piece, 1792 in flight
        var p = try f.producer(), c = f.consumer(ackBatch: 2)
        var assembler = PieceAssembler(limit: 1 << 20)
        let frames = [bytes(10_000, seed: 1), bytes(224, seed: 2), bytes(1, seed: 3), bytes(225, seed: 4), bytes(4481, seed: 5)]
        var got: [[UInt8]] = []
        var pieces = 0
        for frame in frames {
            var offset = 0
            repeat {
                offset = try RingPieces.post(frame, from: offset, into: &p)
                while case .delivered(let o) = c.poll({ assembler.add($0) }) {
                    pieces += 1
                    if case .complete(let whole) = o { got.append(whole) } else { #expect(o == .partial) }
                }
            } while offset < frame.count
        }
        #expect(got == frames)
        #expect(pieces == 45 + 1 + 1 + 2 + 21, "⌈n / 224⌉ pieces per frame")
        #expect(!assembler.isPartial)
    }

    @Test func piecesBeyondTheLimitAreRefusedOnceAndTheNextFrameIsWhole() throws {
        let f = try RingFixture(slots: 16, slotSize: 256)
        var p = try f.producer(), c = f.consumer()
        var assembler = PieceAssembler(limit: 500)
        #expect(try RingPieces.post(bytes(1000, seed: 1), from: 0, into: &p) == 1000)
        #expect(try RingPieces.post(bytes(300, seed: 2), from: 0, into: &p) == 300)
        var outcomes: [PieceAssembler.Outcome] = []
        while case .delivered(let o) = c.poll({ assembler.add($0) }) { outcomes.append(o) }
        #expect(outcomes.filter { if case .tooLong = $0 { return true } else { return false } }.count == 1)
        #expect(outcomes.last == .complete(bytes(300, seed: 2)))
    }

    @Test func anUnknownKindDropsThePartialFrame() throws {
        let f = try RingFixture()
        var p = try f.producer(), c = f.consumer()
        var assembler = PieceAssembler(limit: 1 << 20)
        _ = try p.post(bytes(10, seed: 1), id: 0, kind: RingPieces.more)
        _ = try p.post(bytes(10, seed: 2), id: 0, kind: 7)
        _ = try p.post(bytes(10, seed: 3), id: 0, kind: RingPieces.last)
        var outcomes: [PieceAssembler.Outcome] = []
        while case .delivered(let o) = c.poll({ assembler.add($0) }) { outcomes.append(o) }
        #expect(outcomes == [.partial, .badKind(7), .complete(bytes(10, seed: 3))])
    }
}
