@testable import PlenumClient
import Testing

/// The client's table of requests in flight (`ReplyTable`): every reply
/// reaches its own request whatever the order, strays are dropped, and
/// colliding ids grow the table or, past its bound, go aside.
@Suite struct ReplyTableTests {
    @Test func repliesInAnyOrderReachTheirRequests() {
        let t = ReplyTable<Int>(capacity: 4)
        for rid in 1...4 as ClosedRange<UInt64> { t.expect(rid) }
        #expect(t.count == 4)
        let early = t.take(2)
        #expect(early == nil, "waiting, nothing arrived")
        for rid in [3, 1, 4, 2] as [UInt64] {
            let kept = t.arrive(rid, Int(rid) * 10)
            #expect(kept)
        }
        for rid in [4, 1, 3, 2] as [UInt64] {
            let r = t.take(rid)
            #expect(r == Int(rid) * 10)
        }
        #expect(t.count == 0)
        for rid in 1...4 as ClosedRange<UInt64> { #expect(!t.contains(rid)) }
    }

    @Test func strayAndRepeatedRepliesAreDropped() {
        let t = ReplyTable<Int>(capacity: 4)
        t.expect(5)
        let never = t.arrive(6, 1), sameSlot = t.arrive(9, 1)
        #expect(!never, "never sent")
        #expect(!sameSlot, "same slot as 5, another id")
        let first = t.arrive(5, 7), second = t.arrive(5, 8)
        #expect(first)
        #expect(!second, "a second reply does not replace the first")
        #expect(t.contains(5))
        let r = t.take(5)
        #expect(r == 7)
        let late = t.arrive(5, 9), again = t.take(5)
        #expect(!late, "taken: no longer in flight")
        #expect(again == nil)
        #expect(t.count == 0)
    }

    @Test func idsSharingASlotGrowTheTableAndKeepTheirReplies() {
        let t = ReplyTable<Int>(capacity: 4)
        t.expect(1)
        t.expect(2)
        let early = t.arrive(2, 20)   // held while the table grows twice
        #expect(early)
        t.expect(5)   // slot 1 of 4 is 1's: the table doubles
        #expect(t.capacity == 8)
        t.expect(9)   // slot 1 of 8 is 1's: doubles again
        #expect(t.capacity == 16)
        for rid in [9, 1, 5] as [UInt64] {
            let kept = t.arrive(rid, Int(rid))
            #expect(kept)
        }
        for rid in [1, 5, 9] as [UInt64] {
            let r = t.take(rid)
            #expect(r == Int(rid))
        }
        let moved = t.take(2)
        #expect(moved == 20)
        #expect(t.count == 0)
    }

    /// Replies are held in memory of the table's own: one never taken is
    /// released with the table, one taken is the caller's alone.
    @Test func repliesNeverTakenAreReleasedWithTheTable() {
        final class Reply {}
        weak var kept: Reply?, taken: Reply?
        var survivor: Reply?
        do {
            let t = ReplyTable<Reply>(capacity: 4)
            t.expect(1)
            t.expect(2)
            let a = Reply(), b = Reply()
            kept = a
            taken = b
            _ = t.arrive(1, a)
            _ = t.arrive(2, b)
            survivor = t.take(2)
        }
        #expect(kept == nil, "the table let go of the reply it held")
        #expect(taken != nil && survivor != nil)
        survivor = nil
        #expect(taken == nil, "the taken reply was not retained twice")
    }

    @Test func aRequestNeverWaitedForDoesNotGrowTheTablePastItsBound() {
        let t = ReplyTable<Int>(capacity: 4)
        let max = UInt64(ReplyTable<Int>.maxSlots)
        t.expect(1)   // never answered
        for k in 0..<100 as Range<UInt64> {
            let rid = 1 + (k + 3) * max   // 1's slot at every size
            t.expect(rid)
            let kept = t.arrive(rid, Int(k)), r = t.take(rid)
            #expect(kept)
            #expect(r == Int(k))
        }
        #expect(t.capacity == ReplyTable<Int>.maxSlots)
        #expect(t.count == 1 && t.contains(1))
        let kept = t.arrive(1, 42), r = t.take(1)
        #expect(kept && r == 42)
    }
}
