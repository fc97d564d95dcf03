/// Making room (SPEC §9.1): least recently used first, planned so that a
/// create evicts only if the victims yield one contiguous block.
///
/// The plan walks the LRU list and merges each candidate, on paper, with
/// the free blocks and earlier candidates beside it:
///
/// ```
///   |== pinned ==|-- free --|== v1 ==|== v3 ==|== pinned ==|== v2 ==|-- free --|
///                 \_________ run after v1, v3 _________/      \__ run v2 __/
///   stop at the first run ≥ need: evict v1, v2, v3 (the LRU prefix), allocate.
///   no run ever ≥ need (LRU list exhausted): evict nothing, fail truthfully.
/// ```
/// Each candidate costs O(1) dictionary work to plan and O(log n) to free:
/// k victims cost O(k log n), whatever the number of objects.
extension StoreCore {
    /// Bytes that evicting every candidate would free.
    var evictableBytes: Int { lru.bytes + mutantCandidates().reduce(0) { $0 + objects[$1]!.location.reserved } }

    /// Allocates `total` bytes, evicting if a plan shows that it will work.
    mutating func allocate(_ total: Int, into out: inout [StoreAction]) -> Result<Int, StoreError> {
        if let o = allocator.allocate(total) { return .success(o) }
        let need = allocator.footprint(total)
        guard evictOnCreate else { return .failure(.outOfMemory(requested: need, evictable: 0)) }
        let evictable = evictableBytes
        guard evictable + allocator.stats.free >= need else { return .failure(.outOfMemory(requested: need, evictable: evictable)) }
        let (victims, largest) = plan(need)
        guard let victims else { return .failure(.fragmented(requested: need, largestPossible: largest)) }
        for v in victims { evict(v, into: &out) }
        guard let o = allocator.allocate(total) else {
            assertionFailure("the eviction plan promised a block of \(need) bytes")
            return .failure(.fragmented(requested: need, largestPossible: allocator.stats.largestFree))
        }
        return .success(o)
    }

    /// The LRU prefix whose eviction leaves a free block ≥ `need`, or nil;
    /// and the largest block that evicting the walked candidates makes.
    mutating func plan(_ need: Int) -> ([ObjectID]?, largest: Int) {
        var runEnd: [Int: Int] = [:]     // start → end of a planned run
        var runStart: [Int: Int] = [:]   // end → start
        var victims: [ObjectID] = []
        var largest = allocator.stats.largestFree
        var next = lru.head
        var extra = config.mutants.contains(.freeDespiteRemoteReferences) ? mutantCandidates()[...] : []
        while let id = next ?? extra.popFirst() {
            if next != nil { next = lru.after(id) }
            evictionVisits += 1
            let l = objects[id]!.location
            var start = l.offset, end = l.offset + l.reserved
            // A planned run or a free block ends where the candidate starts…
            if let s = runStart.removeValue(forKey: start) { runEnd[s] = nil; start = s } else if let s = allocator.freeByEnd[start] { start = s }
            // …or starts where it ends.
            if let e = runEnd.removeValue(forKey: end) { runStart[e] = nil; end = e } else if let n = allocator.freeByStart[end] { end += n }
            runEnd[start] = end
            runStart[end] = start
            victims.append(id)
            largest = max(largest, end - start)
            if end - start >= need { return (victims, largest) }
        }
        return (nil, largest)
    }

    /// The `evict` request, as Plasma counts it: LRU candidates go until
    /// their object bytes (data + metadata, not the padded reservation) reach
    /// `bytes`; returns that sum. Empty objects cost nothing to evict, so a
    /// request for 1 byte takes them all up to the first non-empty one.
    mutating func evict(atLeast bytes: Int, into out: inout [StoreAction]) -> Int {
        var freed = 0
        while freed < bytes, let id = lru.head ?? mutantCandidates().first {
            let l = objects[id]!.location
            freed += l.dataSize + l.metadataSize
            evict(id, into: &out)
        }
        return freed
    }

    mutating func evict(_ id: ObjectID, into out: inout [StoreAction]) {
        guard let e = objects[id] else { return }
        evictions += 1
        evictedBytes += e.location.reserved
        out.append(.evicted(id, e.location))
        remove(id)
        notifyDeleted(id, into: &out)
        out.append(.removed(id))
    }

    /// Under the mutant `freeDespiteRemoteReferences` only: sealed objects
    /// held by peers alone also count as candidates (in id order).
    func mutantCandidates() -> [ObjectID] {
        guard config.mutants.contains(.freeDespiteRemoteReferences) else { return [] }
        return objects.filter { $0.value.state == .sealed && $0.value.refCount > 0 && freeable($0.key, $0.value) }.keys.sorted()
    }
}
