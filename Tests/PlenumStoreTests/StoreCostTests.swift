import PlenumStore
import Testing

/// An id from a number (distinct for distinct n).
func oid(n: Int) -> ObjectID {
    var b = [UInt8](repeating: 0xAB, count: 20)
    for i in 0..<8 { b[i] = UInt8(truncatingIfNeeded: n >> (8 * i)) }
    return ObjectID(bytes: b)!
}

/// Hardening of the core (issue 11): no operation is quadratic, waiting
/// state is bounded per client, eviction plans for contiguity, timeouts
/// saturate. Costs are asserted with the core's work counters, not clocks.
@Suite struct StoreCostTests {
    /// A core of `lines` 64-byte lines, clients 1…3 connected.
    static func core(lines: Int) -> StoreCore {
        var core = StoreCore(config: .init(base: 4096, capacity: lines * 64, lineSize: 64))
        for c: ClientID in 1...3 { _ = core.handle(.connected(c), now: 0) }
        return core
    }

    static func reply(_ core: inout StoreCore, _ c: ClientID, _ r: StoreRequest, rid: UInt64 = 1, now: UInt64 = 0) -> StoreResponse? {
        for a in core.handle(.request(c, requestId: rid, r), now: now) { if case .reply(c, rid, let x) = a { return x } }
        return nil
    }

    static func put(_ core: inout StoreCore, _ id: ObjectID, size: Int) {
        guard case .created = reply(&core, 1, .create(id, dataSize: size, metadataSize: 0)) else { Issue.record("create \(id)"); return }
        #expect(reply(&core, 1, .seal(id, digest: 1)) == .sealed)
    }

    @Test func oneCreateEvictingThousandsVisitsOnlyItsVictims() {
        let n = 16_000
        var core = Self.core(lines: n)
        for i in 0..<n { Self.put(&core, oid(n: i), size: 64) }
        // Evicting one object among 16,000 looks at one candidate…
        #expect(Self.reply(&core, 2, .create(oid(n: -1), dataSize: 64, metadataSize: 0)) != nil)
        #expect(core.evictions == 1 && core.evictionVisits == 1, "visited \(core.evictionVisits)")
        #expect(Self.reply(&core, 1, .contains(oid(n: 0))) == .contains(false), "the least recently used went first")
        // …and one create that needs half the memory evicts (and visits)
        // about half the objects, each once: linear, not quadratic.
        guard case .created = Self.reply(&core, 2, .create(oid(n: -2), dataSize: 64 * (n / 2), metadataSize: 0)) else {
            Issue.record("the create of half the memory was refused")
            return
        }
        #expect(core.evictions >= n / 2 && core.evictions <= n / 2 + 2 && core.evictionVisits == core.evictions,
                "\(core.evictions) evictions, \(core.evictionVisits) visits")
        #expect(core.checkInvariants() == nil)
    }

    @Test func aSealVisitsOnlyTheWaitersOfItsId() {
        var core = Self.core(lines: 64)
        // 1,000 blocking gets on ids that never come, one on the id sealed.
        for i in 0..<1_000 { #expect(Self.reply(&core, 2, .get([oid(n: 10_000 + i), oid(n: 20_000 + i)], timeoutMs: -1), rid: UInt64(i + 1)) == nil) }
        #expect(Self.reply(&core, 3, .get([oid(n: 7)], timeoutMs: -1), rid: 5_000) == nil)
        guard case .created = Self.reply(&core, 1, .create(oid(n: 7), dataSize: 8, metadataSize: 0)) else { Issue.record("create"); return }
        let out = core.handle(.request(1, requestId: 9, .seal(oid(n: 7), digest: 1)), now: 0)
        #expect(core.waiterVisits == 1)
        #expect(out.contains { if case .reply(3, 5_000, .objects(let l)) = $0 { return l.count == 1 && l[0] != nil } else { return false } })
        // A waiter is woken once all of its ids are sealed, whatever the order.
        #expect(Self.reply(&core, 3, .get([oid(n: 8), oid(n: 9), oid(n: 8)], timeoutMs: -1), rid: 6_000) == nil)
        Self.put(&core, oid(n: 9), size: 8)
        var woke = false
        guard case .created = Self.reply(&core, 1, .create(oid(n: 8), dataSize: 8, metadataSize: 0)) else { Issue.record("create"); return }
        for a in core.handle(.request(1, requestId: 9, .seal(oid(n: 8), digest: 1)), now: 0) {
            if case .reply(3, 6_000, .objects(let l)) = a { woke = l.count == 3 && !l.contains(nil) }
        }
        #expect(woke)
        // Disconnecting the client with 1,000 waiters forgets them all.
        _ = core.handle(.disconnected(2), now: 0)
        Self.put(&core, oid(n: 10_000), size: 8)
        #expect(core.waiterVisits == 3, "no waiter of the gone client is visited")
        #expect(core.checkInvariants() == nil)
    }

    @Test func waitingIdsAreBoundedPerClient() {
        var core = Self.core(lines: 64)
        let ids = (0..<4096).map { oid(n: 100_000 + $0) }
        for i in 0..<16 { #expect(Self.reply(&core, 2, .get(ids, timeoutMs: -1), rid: UInt64(i + 1)) == nil) }
        guard case .error(.tooManyWaiting(let n, let limit)) = Self.reply(&core, 2, .get(ids, timeoutMs: -1), rid: 99) else {
            Issue.record("a 17th get of 4,096 ids should be refused"); return
        }
        #expect(n == 17 * 4096 && limit == 65_536)
        // Another client is not affected; a poll (timeout 0) never waits.
        #expect(Self.reply(&core, 3, .get(ids, timeoutMs: -1), rid: 100) == nil)
        #expect(Self.reply(&core, 2, .get(ids, timeoutMs: 0), rid: 101) == .objects(Array(repeating: nil, count: 4096)))
    }

    @Test func hugeTimeoutsSaturateToForever() {
        var core = Self.core(lines: 64)
        let now: UInt64 = 5_000_000_000
        for (i, t) in [Int64(1) << 62, Int64.max, Int64(1) << 53].enumerated() {
            #expect(Self.reply(&core, 2, .get([oid(n: 1)], timeoutMs: t), rid: UInt64(i + 1), now: now) == nil, "timeout \(t) must not expire at once")
        }
        #expect(core.nextDeadline == nil)
        #expect(core.handle(.tick, now: now + 1_000_000_000_000).isEmpty)
        #expect(StoreCore.deadline(now: now, timeoutMs: 1_000) == now + 1_000_000_000)
        #expect(StoreCore.deadline(now: .max - 10, timeoutMs: 1) == nil)
        #expect(StoreCore.deadline(now: now, timeoutMs: -1) == nil)
    }

    /// Every other 1 MiB object pinned: 8 MiB free or evictable, but never
    /// 2 MiB in one piece. The create evicts nothing and says why.
    @Test func evictionPlansForContiguityOrEvictsNothing() {
        let mib = 1 << 20
        var core = Self.core(lines: 16 * mib / 64)
        for i in 0..<16 { Self.put(&core, oid(n: i), size: mib) }
        for i in stride(from: 0, to: 16, by: 2) { _ = Self.reply(&core, 3, .get([oid(n: i)], timeoutMs: 0)) }
        guard case .error(.fragmented(let need, let largest)) = Self.reply(&core, 2, .create(oid(n: 99), dataSize: 2 * mib, metadataSize: 0)) else {
            Issue.record("expected a fragmentation error"); return
        }
        #expect(need == 2 * mib && largest == mib)
        #expect(core.evictions == 0, "nothing evicted for a create that cannot succeed")
        #expect(StoreError.fragmented(requested: need, largestPossible: largest).description.contains("nothing was evicted"))
        // Unpin 6 and 8: a plan now exists. The LRU order is 1, 3, 5, …,
        // 15, then 6, 8 (released last): the LRU prefix up to 6 is evicted
        // (6 joins 5 and 7 into 3 MiB), 8 stays.
        _ = Self.reply(&core, 3, .release(oid(n: 6)))
        _ = Self.reply(&core, 3, .release(oid(n: 8)))
        guard case .created(let l) = Self.reply(&core, 2, .create(oid(n: 99), dataSize: 2 * mib, metadataSize: 0)) else {
            Issue.record("a contiguous plan exists"); return
        }
        #expect(core.evictions == 9)
        #expect(l.offset == 4096 + 5 * mib, "best fit: the 3 MiB run 5–7")
        #expect(Self.reply(&core, 1, .contains(oid(n: 8))) == .contains(true))
        #expect(core.checkInvariants() == nil)
    }
}
