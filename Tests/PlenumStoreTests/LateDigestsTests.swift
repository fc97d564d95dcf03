import PlenumMemory
import PlenumStore
import Testing

/// SPEC §11.3 "Seal": digests a store alone takes after a Plasma seal, a
/// chunk at a time, must be the digests of §9.4 of the objects still there.
@Suite struct LateDigestsTests {
    let mapping: Mapping
    let memory: MappedMemory

    init() throws {
        mapping = try Mapping(anonymous: 1 << 20)
        memory = mapping.memory(lineSize: .default)
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        memory.write(at: 0, count: 1 << 20) { b in
            for i in 0..<b.count {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17
                b[i] = UInt8(truncatingIfNeeded: x)
            }
        }
    }

    func finishAll(_ d: inout LateDigests, chunk: Int, isCurrent: (ObjectID, UInt64) -> Bool = { _, _ in true }) -> [LateDigests.Finished] {
        var out: [LateDigests.Finished] = []
        var steps = 0
        while !d.isEmpty {
            steps += 1
            if let f = d.advance(memory, bytes: chunk, isCurrent: isCurrent) { out.append(f) }
        }
        #expect(steps < 10_000)
        return out
    }

    @Test func aDigestTakenInChunksIsTheDigestOfTheWholeObjectOldestFirst() {
        var d = LateDigests()
        let a = ObjectLocation(offset: 4096, dataSize: 200_003, metadataSize: 17, reserved: 200_064)
        let b = ObjectLocation(offset: 300_000, dataSize: 0, metadataSize: 0, reserved: 0)
        let c = ObjectLocation(offset: 500_000, dataSize: 100, metadataSize: 65_536, reserved: 65_664)
        d.add(oid(1), location: a, created: 10)
        d.add(oid(2), location: b, created: 11)
        d.add(oid(3), location: c, created: 12)
        #expect(d.count == 3 && d.contains(oid(2)))
        let done = finishAll(&d, chunk: 4096)
        #expect(done == [.init(id: oid(1), created: 10, digest: ObjectMemory.digest(memory, a)),
                         .init(id: oid(2), created: 11, digest: 0),
                         .init(id: oid(3), created: 12, digest: ObjectMemory.digest(memory, c))])
        #expect(d.count == 0 && !d.contains(oid(1)))
    }

    /// The bound of SPEC §11.3 "Seal": only objects of `minimumBytes` or
    /// more wait, and never more than `limit` of them; once one is
    /// finished, another may wait.
    @Test func atMostLimitObjectsOfAtLeastMinimumBytesWait() {
        var d = LateDigests(minimumBytes: 4096, limit: 3)
        func at(_ k: Int, _ size: Int) -> ObjectLocation { ObjectLocation(offset: 8192 * k, dataSize: size, metadataSize: 0, reserved: 8192) }
        #expect(!d.admits(at(0, 4095)), "smaller than minimumBytes: digested at the seal")
        #expect(d.admits(ObjectLocation(offset: 0, dataSize: 4000, metadataSize: 96, reserved: 8192)), "data and metadata count together")
        for k in 0..<3 {
            #expect(d.admits(at(k, 4096)))
            d.add(ObjectID(bytes: [UInt8](repeating: UInt8(k + 1), count: 20))!, location: at(k, 4096), created: UInt64(k))
        }
        #expect(d.count == 3)
        #expect(!d.admits(at(3, 1 << 20)), "full: the next seal is digested at once")
        #expect(d.advance(memory, bytes: 4096, isCurrent: { _, _ in true }) != nil)
        #expect(d.admits(at(3, 4096)), "room again once one is finished")
        #expect(LateDigests().minimumBytes == 64 << 10 && LateDigests().limit == 4096, "the store's bound (SPEC §11.3)")
    }

    @Test func anEntryNoLongerCurrentIsDroppedAndASecondSealOfTheIdStartsOver() {
        var d = LateDigests()
        let first = ObjectLocation(offset: 0, dataSize: 50_000, metadataSize: 0, reserved: 50_048)
        let second = ObjectLocation(offset: 100_000, dataSize: 30_000, metadataSize: 8, reserved: 30_080)
        d.add(oid(1), location: first, created: 1)
        let part = d.advance(memory, bytes: 8192, isCurrent: { _, _ in true })   // part of the first object
        #expect(part == nil)
        // The id was deleted and sealed again: the digest is of the new object.
        d.add(oid(1), location: second, created: 2)
        d.add(oid(2), location: first, created: 3)
        #expect(d.count == 2)
        let done = finishAll(&d, chunk: 8192) { id, created in !(id == oid(2) && created == 3) }
        #expect(done == [.init(id: oid(1), created: 2, digest: ObjectMemory.digest(memory, second))])
        #expect(d.isEmpty)
    }

    @Test func takeFinishesWhatIsLeftOfOneObjectNow() {
        var d = LateDigests()
        let a = ObjectLocation(offset: 1000, dataSize: 100_000, metadataSize: 3, reserved: 100_096)
        let b = ObjectLocation(offset: 200_000, dataSize: 10, metadataSize: 0, reserved: 64)
        d.add(oid(1), location: a, created: 7)
        d.add(oid(2), location: b, created: 8)
        let part = d.advance(memory, bytes: 65_536, isCurrent: { _, _ in true })
        #expect(part == nil)
        let first = d.take(oid(1), memory), again = d.take(oid(1), memory)
        #expect(first == .init(id: oid(1), created: 7, digest: ObjectMemory.digest(memory, a)))
        #expect(again == nil && d.count == 1)
        let second = d.take(oid(2), memory)
        #expect(second == .init(id: oid(2), created: 8, digest: ObjectMemory.digest(memory, b)))
        let nothing = d.advance(memory, bytes: 1, isCurrent: { _, _ in true })
        #expect(d.isEmpty && nothing == nil)
    }

    @Test func theStoreRecordsALateDigestOnlyForTheSealedObjectItWasTakenOf() {
        var h = Harness()
        let x = oid(9)
        _ = h.send(1, .create(x, dataSize: 100, metadataSize: 0))
        let created = try! #require(h.core.createdNanos(x))
        let early = h.core.recordDigest(x, 42, ifCreatedAt: created)   // not sealed yet
        #expect(!early)
        _ = h.send(1, .seal(x, digest: 0))
        let other = h.core.recordDigest(x, 42, ifCreatedAt: created &+ 1)   // another object of that id
        #expect(!other && h.core.digest(x) == 0)
        let recorded = h.core.recordDigest(x, 42, ifCreatedAt: created)
        #expect(recorded && h.core.digest(x) == 42)
        let unknown = h.core.recordDigest(oid(8), 42, ifCreatedAt: created)
        #expect(!unknown)
    }
}
