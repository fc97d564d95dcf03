import PlenumStore
import Testing

func oid(_ n: UInt8) -> ObjectID { ObjectID(bytes: [UInt8](repeating: n, count: 20))! }

/// Drives a core with a fake clock and collects its actions.
struct Harness {
    var core = StoreCore(config: .init(base: 4096, capacity: 64 * 128, lineSize: 128))
    var now: UInt64 = 1_000
    var rid: UInt64 = 0

    init(capacityLines: Int = 64) {
        core = StoreCore(config: .init(base: 4096, capacity: capacityLines * 128, lineSize: 128))
        for c: ClientID in 1...3 { _ = core.handle(.connected(c), now: now) }
    }

    mutating func send(_ c: ClientID, _ r: StoreRequest) -> [StoreAction] {
        rid += 1
        let out = core.handle(.request(c, requestId: rid, r), now: now)
        #expect(core.checkInvariants() == nil, "\(core.checkInvariants() ?? "")")
        return out
    }

    /// The reply to this request (nil when deferred).
    mutating func ask(_ c: ClientID, _ r: StoreRequest) -> StoreResponse? {
        let out = send(c, r)
        for a in out { if case .reply(c, rid, let response) = a { return response } }
        return nil
    }

    mutating func put(_ c: ClientID, _ id: ObjectID, size: Int = 100) {
        guard case .created = ask(c, .create(id, dataSize: size, metadataSize: 0)) else { Issue.record("create failed"); return }
        #expect(ask(c, .seal(id, digest: 7)) == .sealed)
    }

    mutating func advance(ms: UInt64) -> [StoreAction] {
        now += ms * 1_000_000
        return core.handle(.tick, now: now)
    }
}

@Suite struct StoreCoreTests {
    @Test func createSealGetReleaseDelete() throws {
        var h = Harness()
        let id = oid(1)
        guard case .created(let loc) = h.ask(1, .create(id, dataSize: 300, metadataSize: 20)) else { Issue.record("no location"); return }
        #expect(loc.offset % 128 == 0 && loc.offset >= 4096 && loc.reserved == 384 && loc.metadataOffset == loc.offset + 300)
        #expect(h.ask(1, .contains(id)) == .contains(false), "unsealed objects are not visible")
        #expect(h.ask(1, .seal(id, digest: 42)) == .sealed)
        #expect(h.ask(2, .contains(id)) == .contains(true))
        #expect(h.ask(2, .get([id], timeoutMs: 0)) == .objects([loc]))
        #expect(h.ask(3, .delete([id])) == .deleted([.inUse(id, references: 1)]))
        #expect(h.ask(2, .release(id)) == .released)
        #expect(h.ask(3, .delete([id])) == .deleted([nil]))
        #expect(h.ask(3, .contains(id)) == .contains(false))
        #expect(h.core.stats.used == 0)
    }

    /// Plasma's deletion cache (SPEC §11.9): a delete of an object in use or
    /// unsealed, remembered, is carried out at its last release — by a
    /// release or a disconnect — with the delete's notification and removal;
    /// an abort, or the object going another way, forgets it.
    @Test func aRememberedDeleteIsCarriedOutAtTheLastRelease() throws {
        var h = Harness()
        let x = oid(1), y = oid(2), z = oid(3)
        h.put(1, x)
        _ = h.ask(2, .get([x], timeoutMs: 0))
        _ = h.ask(3, .get([x], timeoutMs: 0))
        #expect(h.ask(1, .delete([x])) == .deleted([.inUse(x, references: 2)]))
        var remembered = h.core.deleteAtLastRelease(x)
        #expect(remembered)
        remembered = h.core.deleteAtLastRelease(oid(9))
        #expect(!remembered, "no such object")
        #expect(h.ask(2, .release(x)) == .released)
        #expect(h.ask(1, .contains(x)) == .contains(true), "client 3 still holds it")
        let out = h.core.handle(.disconnected(3), now: h.now)
        #expect(out.contains(.removed(x)), "the last holder went: deleted")
        #expect(h.ask(1, .contains(x)) == .contains(false))
        #expect(h.core.stats.used == 0 && h.core.deleteAtRelease.isEmpty)
        // Unsealed: remembered; sealed with nobody holding it, it stays
        // until its last reference goes.
        guard case .created = h.ask(1, .create(y, dataSize: 10, metadataSize: 0)) else { Issue.record("create"); return }
        remembered = h.core.deleteAtLastRelease(y)
        #expect(remembered)
        #expect(h.ask(1, .seal(y, digest: 1)) == .sealed)
        _ = h.ask(2, .get([y], timeoutMs: 0))
        #expect(h.ask(2, .release(y)) == .released)
        #expect(h.ask(2, .contains(y)) == .contains(false))
        // An abort forgets it; the id starts afresh.
        guard case .created = h.ask(1, .create(z, dataSize: 10, metadataSize: 0)) else { Issue.record("create"); return }
        remembered = h.core.deleteAtLastRelease(z)
        #expect(remembered)
        #expect(h.ask(1, .abort(z)) == .aborted)
        #expect(h.core.deleteAtRelease.isEmpty)
        h.put(1, z)
        _ = h.ask(2, .get([z], timeoutMs: 0))
        #expect(h.ask(2, .release(z)) == .released)
        #expect(h.ask(2, .contains(z)) == .contains(true), "a new object of a forgotten id is not deleted")
        remembered = h.core.deleteAtLastRelease(z)
        #expect(!remembered, "not in use, not unsealed: a plain delete does it")
    }

    @Test func errorsAreSpecificAndTheCoreServesOn() {
        var h = Harness()
        let id = oid(2)
        #expect(h.ask(1, .create(id, dataSize: -1, metadataSize: 5)) == .error(.invalidSize(data: -1, metadata: 5)))
        #expect(h.ask(1, .create(id, dataSize: Int.max, metadataSize: 1)) == .error(.invalidSize(data: Int.max, metadata: 1)))
        #expect(h.ask(1, .create(id, dataSize: 1 << 40, metadataSize: 0)) == .error(.tooLarge(requested: 1 << 40, capacity: 64 * 128)))
        #expect(h.ask(1, .seal(id, digest: 0)) == .error(.notFound(id)))
        #expect(h.ask(1, .release(id)) == .error(.noReference(id)))
        guard case .created = h.ask(1, .create(id, dataSize: 10, metadataSize: 0)) else { Issue.record("create"); return }
        #expect(h.ask(1, .create(id, dataSize: 10, metadataSize: 0)) == .error(.alreadyExists(id)))
        #expect(h.ask(2, .seal(id, digest: 0)) == .error(.notCreator(id)))
        #expect(h.ask(2, .abort(id)) == .error(.notCreator(id)))
        #expect(h.ask(3, .delete([id, oid(9)])) == .deleted([.notSealed(id), .notFound(oid(9))]))
        #expect(h.ask(1, .seal(id, digest: 0)) == .sealed)
        #expect(h.ask(1, .seal(id, digest: 0)) == .error(.alreadySealed(id)))
        #expect(h.ask(1, .abort(id)) == .error(.alreadySealed(id)))
        #expect(h.ask(1, .release(id)) == .error(.noReference(id)), "release without get")
        let many = (0..<5000).map { _ in id }
        #expect(h.ask(1, .get(many, timeoutMs: 0)) == .error(.tooManyIds(5000, limit: 4096)))
        let out = h.core.handle(.request(99, requestId: 1, .list), now: h.now)
        #expect(out == [.reply(99, requestId: 1, .error(.unknownClient(99)))])
        #expect(h.ask(1, .contains(id)) == .contains(true), "still serving")
    }

    @Test func abortFreesTheMemory() {
        var h = Harness()
        guard case .created = h.ask(1, .create(oid(3), dataSize: 1000, metadataSize: 0)) else { Issue.record("create"); return }
        #expect(h.core.stats.used == 1024)
        #expect(h.ask(1, .abort(oid(3))) == .aborted)
        #expect(h.core.stats.used == 0)
        #expect(h.ask(1, .contains(oid(3))) == .contains(false))
    }

    @Test func blockingGetIsWokenBySeal() {
        var h = Harness()
        let id = oid(4)
        #expect(h.ask(2, .get([id], timeoutMs: -1)) == nil, "deferred until sealed")
        let getRid = h.rid
        guard case .created(let loc) = h.ask(1, .create(id, dataSize: 8, metadataSize: 0)) else { Issue.record("create"); return }
        let out = h.send(1, .seal(id, digest: 1))
        #expect(out.contains(.reply(2, requestId: getRid, .objects([loc]))))
        #expect(out.contains(.reply(1, requestId: h.rid, .sealed)))
        #expect(h.ask(2, .release(id)) == .released)
    }

    @Test func getTimesOutWithWhatIsThere() {
        var h = Harness()
        h.put(1, oid(5))
        #expect(h.ask(2, .get([oid(5), oid(6)], timeoutMs: 50)) == nil)
        let getRid = h.rid
        #expect(h.core.nextDeadline == h.now + 50_000_000)
        #expect(h.advance(ms: 49).isEmpty)
        let out = h.advance(ms: 1)
        guard case .reply(2, getRid, .objects(let locs))? = out.first else { Issue.record("no timeout reply: \(out)"); return }
        #expect(locs.count == 2 && locs[0] != nil && locs[1] == nil)
        #expect(h.core.nextDeadline == nil)
        #expect(h.ask(2, .release(oid(5))) == .released)
        #expect(h.ask(2, .release(oid(6))) == .error(.noReference(oid(6))))
    }

    @Test func lruEvictionMakesRoomButNeverEvictsInUse() {
        var h = Harness(capacityLines: 8)  // 1024 bytes
        for i in 0..<4 { h.put(1, oid(UInt8(10 + i)), size: 256) }
        #expect(h.ask(2, .get([oid(10)], timeoutMs: 0)) == .objects([h.core.location(oid(10))]))
        _ = h.ask(3, .get([oid(11)], timeoutMs: 0)); _ = h.ask(3, .release(oid(11)))   // 11 used recently
        // Full: a new object evicts the LRU unreferenced one (12), not 10 (in use) or 11 (recent).
        _ = h.ask(3, .subscribe)
        let out = h.send(1, .create(oid(20), dataSize: 256, metadataSize: 0))
        #expect(out.contains(.notify(3, .deleted(oid(12)))))
        #expect(h.ask(1, .contains(oid(10))) == .contains(true))
        #expect(h.ask(1, .contains(oid(11))) == .contains(true))
        #expect(h.core.evictions == 1)
        // Nothing evictable is big enough: a clear out-of-memory error.
        #expect(h.ask(1, .create(oid(21), dataSize: 1024, metadataSize: 0)) == .error(.outOfMemory(requested: 1024, evictable: 512)))
        #expect(h.ask(1, .evict(bytes: 100)) == .evicted(bytes: 256))
    }

    /// Plasma's semantics: empty objects exist (one line reserved), and
    /// `evict` counts object bytes, so evicting 1 byte takes every empty
    /// object up to the first non-empty one, in LRU order, each announced
    /// with its location before it goes.
    @Test func emptyObjectsExistAndEvictCountsObjectBytes() {
        var h = Harness()
        for i in 0..<3 { h.put(1, oid(UInt8(40 + i)), size: 0) }
        h.put(1, oid(43), size: 100)
        h.put(1, oid(44), size: 0)
        #expect(h.ask(2, .contains(oid(40))) == .contains(true))
        #expect(h.core.location(oid(40))?.reserved == 128)
        let l41 = h.core.location(oid(41))!
        let out = h.send(2, .evict(bytes: 1))
        #expect(out.contains(.reply(2, requestId: h.rid, .evicted(bytes: 100))))
        #expect(out.contains(.evicted(oid(41), l41)))
        #expect(out.filter { if case .removed = $0 { return true } else { return false } }.count == 4)
        #expect(h.ask(2, .contains(oid(43))) == .contains(false))
        #expect(h.ask(2, .contains(oid(44))) == .contains(true))
        #expect(h.core.checkInvariants() == nil)
    }

    @Test func subscribersHearSealsAndDeletes() {
        var h = Harness()
        #expect(h.ask(3, .subscribe) == .subscribed)
        guard case .created(let loc) = h.ask(1, .create(oid(30), dataSize: 8, metadataSize: 0)) else { Issue.record("create"); return }
        #expect(h.send(1, .seal(oid(30), digest: 0)).contains(.notify(3, .sealed(oid(30), loc))))
        #expect(h.send(1, .delete([oid(30)])).contains(.notify(3, .deleted(oid(30)))))
    }

    @Test func disconnectAbortsUnsealedAndReleasesReferences() {
        var h = Harness()
        h.put(1, oid(40))
        _ = h.ask(2, .get([oid(40)], timeoutMs: 0))
        guard case .created = h.ask(2, .create(oid(41), dataSize: 5000, metadataSize: 0)) else { Issue.record("create"); return }
        _ = h.ask(2, .get([oid(42)], timeoutMs: -1))
        _ = h.core.handle(.disconnected(2), now: h.now)
        #expect(h.core.checkInvariants() == nil)
        #expect(h.ask(1, .contains(oid(41))) == .contains(false))
        #expect(h.ask(1, .delete([oid(40)])) == .deleted([nil]), "its reference is gone")
        #expect(h.core.stats.used == 0, "nothing leaks")
        #expect(h.core.stats.clients == 2)
        // The dead client's waiter is not answered when the object comes.
        guard case .created = h.ask(1, .create(oid(42), dataSize: 100, metadataSize: 0)) else { Issue.record("create"); return }
        let sealed = h.send(1, .seal(oid(42), digest: 7))
        #expect(sealed.contains { if case .reply(1, _, .sealed) = $0 { true } else { false } })
        #expect(!sealed.contains { if case .reply(2, _, _) = $0 { true } else { false } }, "\(sealed)")
    }

    @Test func listReportsSizesRefsAndTimes() {
        var h = Harness()
        guard case .created = h.ask(1, .create(oid(50), dataSize: 10, metadataSize: 3)) else { Issue.record("create"); return }
        h.now += 5_000
        _ = h.ask(1, .seal(oid(50), digest: 99))
        _ = h.ask(2, .get([oid(50)], timeoutMs: 0))
        guard case .list(let rows) = h.ask(3, .list) else { Issue.record("list"); return }
        #expect(rows.count == 1)
        #expect(rows[0].state == .sealed && rows[0].refCount == 1 && rows[0].constructNanos == 5_000 && rows[0].digest == 99)
        #expect(rows[0].location.dataSize == 10 && rows[0].location.metadataSize == 3)
    }

    @Test func randomOperationsKeepTheInvariants() {
        var h = Harness(capacityLines: 32)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            let c = ClientID.random(in: 1...3, using: &rng)
            let id = oid(UInt8.random(in: 0..<12, using: &rng))
            let r: StoreRequest
            switch Int.random(in: 0..<8, using: &rng) {
            case 0: r = .create(id, dataSize: Int.random(in: 0...1500, using: &rng), metadataSize: Int.random(in: 0...50, using: &rng))
            case 1: r = .seal(id, digest: 1)
            case 2: r = .abort(id)
            case 3: r = .get([id], timeoutMs: Int64.random(in: -1...5, using: &rng))
            case 4: r = .release(id)
            case 5: r = .delete([id])
            case 6: r = .evict(bytes: Int.random(in: 0...2000, using: &rng))
            default: r = .contains(id)
            }
            _ = h.send(c, r)
            if Int.random(in: 0..<50, using: &rng) == 0 {
                _ = h.core.handle(.disconnected(c), now: h.now)
                _ = h.core.handle(.connected(c), now: h.now)
            }
            _ = h.advance(ms: 1)
        }
        for c: ClientID in 1...3 { _ = h.core.handle(.disconnected(c), now: h.now) }
        #expect(h.core.checkInvariants() == nil)
        _ = h.core.handle(.connected(9), now: h.now)
        var h2 = h
        _ = h2.ask(9, .evict(bytes: 1 << 30))
        #expect(h2.core.stats.used == 0, "with every client gone, everything is evictable and nothing leaked")
    }
}

@Suite struct StoreCoreRefreshTests {
    @Test func refreshProtectsAnObjectFromLRUEviction() {
        var h = Harness(capacityLines: 4)   // 512 bytes
        h.put(1, oid(60), size: 256)
        h.put(1, oid(61), size: 256)
        #expect(h.ask(2, .refresh([oid(60), oid(99)])) == .refreshed, "unknown ids are ignored")
        guard case .created = h.ask(1, .create(oid(62), dataSize: 256, metadataSize: 0)) else { Issue.record("create"); return }
        #expect(h.ask(1, .contains(oid(60))) == .contains(true), "refreshed: kept")
        #expect(h.ask(1, .contains(oid(61))) == .contains(false), "least recently used: evicted")
    }
}
