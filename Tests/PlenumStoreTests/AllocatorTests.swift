import PlenumStore
import Testing

/// The reference: a plain sorted list of free intervals, coalesced eagerly,
/// best fit by linear scan.
struct ReferenceAllocator {
    var free: [(start: Int, length: Int)]
    var used: [Int: Int] = [:]
    let granule: Int

    init(base: Int, size: Int, granule: Int) {
        free = size > 0 ? [(base, size)] : []
        self.granule = granule
    }

    mutating func allocate(_ bytes: Int) -> Int? {
        let need = max(granule, (bytes + granule - 1) / granule * granule)
        var best: Int?
        for (i, f) in free.enumerated() where f.length >= need {
            if best == nil || f.length < free[best!].length || (f.length == free[best!].length && f.start < free[best!].start) { best = i }
        }
        guard let b = best else { return nil }
        let f = free[b]
        if f.length == need { free.remove(at: b) } else { free[b] = (f.start + need, f.length - need) }
        used[f.start] = need
        return f.start
    }

    mutating func release(_ offset: Int) -> Bool {
        guard let length = used.removeValue(forKey: offset) else { return false }
        free.append((offset, length))
        free.sort { $0.start < $1.start }
        var merged: [(start: Int, length: Int)] = []
        for f in free {
            if let last = merged.last, last.start + last.length == f.start { merged[merged.count - 1].length += f.length } else { merged.append(f) }
        }
        free = merged
        return true
    }
}

@Suite struct AllocatorTests {
    @Test func allocationsAreLineAlignedPaddedAndDisjoint() throws {
        var a = RegionAllocator(base: 4096, size: 64 * 1024, lineSize: 128)
        let x0 = a.allocate(1), y0 = a.allocate(129), z0 = a.allocate(0)
        let x = try #require(x0), y = try #require(y0), z = try #require(z0)
        #expect(x % 128 == 0 && y % 128 == 0 && z % 128 == 0)
        #expect(a.length(at: x) == 128 && a.length(at: y) == 256 && a.length(at: z) == 128)
        #expect(Set([x, y, z]).count == 3)
        #expect(a.stats.used == 512 && a.stats.allocations == 3)
        let huge = a.allocate(64 * 1024), negative = a.allocate(-1)
        #expect(huge == nil, "larger than what is free")
        #expect(negative == nil)
    }

    @Test func freeCoalescesBackToOneBlock() throws {
        var a = RegionAllocator(base: 0, size: 1 << 20, lineSize: 64)
        var offsets: [Int] = []
        for i in 0..<100 {
            let o = a.allocate(i * 37)
            offsets.append(try #require(o))
        }
        for o in offsets.shuffled() { try a.free(o) }
        #expect(a.freeBlocks.count == 1)
        #expect(a.freeBlocks.first?.length == 1 << 20)
        #expect(a.stats.used == 0)
        #expect(a.stats.fragmentation == 0)
    }

    @Test func doubleFreeAndForeignOffsetsAreErrors() throws {
        var a = RegionAllocator(base: 0, size: 4096, lineSize: 64)
        let got = a.allocate(10)
        let x = try #require(got)
        try a.free(x)
        #expect(throws: AllocatorError.notAllocated(x)) { try a.free(x) }
        #expect(throws: AllocatorError.notAllocated(12345)) { try a.free(12345) }
    }

    @Test func fragmentationIsReported() throws {
        var a = RegionAllocator(base: 0, size: 64 * 10, lineSize: 64)
        let blocks = (0..<10).compactMap { _ in a.allocate(64) }
        let more = a.allocate(1)
        #expect(blocks.count == 10 && more == nil)
        for (i, b) in blocks.enumerated() where i % 2 == 0 { try a.free(b) }
        let s = a.stats
        #expect(s.free == 320 && s.largestFree == 64 && s.freeBlocks == 5)
        #expect(abs(s.fragmentation - 0.8) < 1e-9)
        let wide = a.allocate(128)
        #expect(wide == nil, "320 bytes free but no 128-byte hole")
    }

    /// Random operation sequences against the reference model: identical
    /// offsets, identical free lists, identical failures.
    @Test(arguments: [64, 128, 256])
    func matchesTheReferenceModel(line: Int) throws {
        var rng = SystemRandomNumberGenerator()
        for round in 0..<20 {
            let size = line * Int.random(in: 1...400, using: &rng)
            var a = RegionAllocator(base: line * 3, size: size, lineSize: line)
            var r = ReferenceAllocator(base: line * 3, size: size, granule: line)
            var live: [Int] = []
            for _ in 0..<600 {
                if live.isEmpty || Int.random(in: 0..<10, using: &rng) < 6 {
                    let bytes = Int.random(in: 0...(size / 4), using: &rng)
                    let got = a.allocate(bytes)
                    let want = r.allocate(bytes)
                    #expect(got == want, "round \(round): allocate(\(bytes))")
                    if let got { live.append(got) }
                } else {
                    let o = live.remove(at: Int.random(in: 0..<live.count, using: &rng))
                    try a.free(o)
                    let released = r.release(o)
                    #expect(released)
                }
                #expect(a.freeBlocks.map(\.start) == r.free.map(\.start))
                #expect(a.freeBlocks.map(\.length) == r.free.map(\.length))
                #expect(a.stats.used + a.stats.free == size)
            }
            for o in live { try a.free(o) }
            #expect(a.stats.used == 0 && a.freeBlocks.count == 1)
        }
    }
}
