import Foundation
import PlenumCluster
import Testing
@testable import PlenumGRPC

/// The carrier's two hand-offs between the loop thread and gRPC's tasks.
@Suite struct QueueTests {
    func envelope(_ c: UInt64) -> Plenum_Peer_V1_Envelope { .with { $0.from = 1; $0.correlation = c } }

    @Test func anOutboxDeliversInOrderAndWakesAWaitingTaker() async {
        let o = Outbox()
        for c in 1...3 { o.push(envelope(UInt64(c))) }
        var got: [UInt64] = []
        for _ in 0..<3 { got.append(await o.next()?.correlation ?? 0) }
        #expect(got == [1, 2, 3])
        async let later = o.next()
        try? await Task.sleep(for: .milliseconds(50))
        o.push(envelope(4))
        #expect(await later?.correlation == 4)
        o.close()
        #expect(await o.next() == nil, "closed")
    }

    /// Waits until a taker other than `previous` waits in `o` (an event,
    /// not a delay: a busy machine may start a task late); its token.
    func waitingTaker(_ o: Outbox, other previous: UInt64 = 0) async -> UInt64 {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let t = o.state.withLock { $0.waiterToken }
            if t != 0 && t != previous { return t }
            try? await Task.sleep(for: .milliseconds(1))
        }
        Issue.record("no taker started waiting within 60 s")
        return 0
    }

    @Test func aNewerTakerEndsTheOlderOnesWaitAndCancellationEndsOnlyItsOwn() async {
        let o = Outbox()
        let first = Task { await o.next() }
        let t1 = await waitingTaker(o)
        let second = Task { await o.next() }
        let t2 = await waitingTaker(o, other: t1)
        #expect(await first.value == nil, "replaced by the newer taker")
        first.cancel()
        o.push(envelope(7))
        #expect(await second.value?.correlation == 7, "the newer taker still gets the next envelope")
        let third = Task { await o.next() }
        _ = await waitingTaker(o, other: t2)
        third.cancel()
        #expect(await third.value == nil)
    }

    @Test func aCallWaitsForItsReplyAndAListForItsLastChunk() async {
        let w = ReplyWaiters()
        let key = ReplyWaiters.Key(node: 2, correlation: 5)
        w.open(key)
        async let replies = w.wait(key, timeout: .seconds(30))
        try? await Task.sleep(for: .milliseconds(50))
        #expect(w.answer(key, envelope(5), final: false))
        #expect(!w.answer(.init(node: 3, correlation: 5), envelope(5), final: true), "another node's correlation")
        #expect(w.answer(key, envelope(5), final: true))
        #expect(await replies.count == 2)
        #expect(!w.answer(key, envelope(5), final: true), "answered: a late reply travels as a call of its own")
    }

    @Test func aCallThatIsNeverAnsweredEndsAtItsTimeout() async {
        let w = ReplyWaiters()
        let key = ReplyWaiters.Key(node: 2, correlation: 6)
        w.open(key)
        let start = ContinuousClock.now
        let r = await w.wait(key, timeout: .milliseconds(100))
        #expect(r.isEmpty && ContinuousClock.now - start >= .milliseconds(100))
        #expect(!w.answer(key, envelope(6), final: true))
    }

    @Test func aReplyBeforeTheWaitIsKept() async {
        let w = ReplyWaiters()
        let key = ReplyWaiters.Key(node: 1, correlation: 8)
        w.open(key)
        #expect(w.answer(key, envelope(8), final: true))
        #expect(await w.wait(key, timeout: .seconds(30)).count == 1)
    }
}
