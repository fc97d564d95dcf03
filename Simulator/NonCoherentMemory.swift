/// The simulator's model of non-coherent disaggregated memory (SPEC.md §7.1).
///
/// One flat address space made of regions, each owned by a node or by none
/// (a CXL pool). Per node: a write-back cache of whole lines and a store
/// buffer of pending stores and flushes. Every 8-byte word carries a *tag*,
/// the serial number of the store that produced its value, in memory and in
/// every cached copy, so the checker knows the ground truth of every line.
///
/// Staleness is judged causally, with vector clocks: a node publishes (a
/// fence after a flush that followed its stores) with a new stamp of its own
/// clock; a node that reads a published value learns everything its writer
/// knew when publishing. A read is *stale* when the reader gets a version of
/// a word whose successor was published in the reader's causal past — it
/// knew (through some value it read) that a newer value existed, and still
/// got the old one. A read that merely races with a newer publication is not
/// stale: the reader could not have known.
///
/// ```
///  node n:  store ──▶ [ store buffer ] ──drain──▶ cache line (dirty) ──write-back──▶ memory
///  node n:  load  ◀── store buffer (own pending) ◀── cache (even stale) ◀── miss: owner's
///                                                           cache if it holds the line,
///                                                           else memory
///  write-back: whole line, never invalidates any other cache (remote or owner)
///  flush: write back if dirty, then drop;  evict: same, at any time;
///  prefetch: fetch any reachable line at any time
/// ```
final class NonCoherentMemory {
    struct Region { let base: Int; let size: Int; let owner: Int? }

    enum Pending {
        case store(offset: Int, bytes: [UInt8], releasing: Bool)
        case flush(line: Int, namedWord: Int)
    }

    final class Node {
        var cache: [UInt8]
        var tags: [UInt32]
        var present: [Bool]
        var dirty: [Bool]
        var queue: [Pending] = []
        /// (word, serial) of drained stores no flush has followed yet.
        var unflushed: [(Int, UInt32)] = []
        /// (word, serial) of drained stores a later flush has followed: they
        /// become published truth at this node's next completed fence.
        var flushedSinceFence: [(Int, UInt32)] = []
        var crashed = false
        /// Per line: `commits` when this copy was fetched. A value the copy
        /// holds that was published later was read before its publication
        /// (a snoop of a dirty line, or an evicted unpublished value).
        var fetchedAt: [Int]
        init(bytes: Int, line: Int) {
            cache = [UInt8](repeating: 0, count: bytes)
            tags = [UInt32](repeating: 0, count: bytes / 8)
            present = [Bool](repeating: false, count: bytes / line)
            dirty = [Bool](repeating: false, count: bytes / line)
            fetchedAt = [Int](repeating: 0, count: bytes / line)
        }
    }

    let line: Int
    let size: Int
    var regions: [Region] = []
    /// reach[node][region]
    var reach: [[Bool]]
    var memory: [UInt8]
    var memoryTags: [UInt32]
    var serial: UInt32 = 0
    /// Per store serial (index 0: the initial zero of every word).
    var writerOf: [Int] = [-1]
    var publishedStamp: [UInt32] = [0]        // writer's stamp at publication, .max = not yet
    var publishedStep: [Int] = [0]
    /// The writer's vector clock at the store: `nodes` entries per serial.
    var knowledge: [UInt32]
    /// The writer's vector clock at the store's publication (its fence),
    /// what a reader learns who read the value after that (`publishedCommit`).
    var committedKnowledge: [UInt32]
    /// Completed publishing fences so far, and per serial the count at its
    /// publication (Int.max: not yet).
    var commits = 0
    var publishedCommit: [Int] = [0]
    /// Per word: serials of every store to it, in order (its versions).
    var versions: [[UInt32]]
    /// Per node: vector clock of publications it causally knows.
    var clocks: [[UInt32]]
    var nodes: [Node]
    /// The single writer the layout assigns to each line (nil: unassigned).
    var lineWriter: [Int?]
    /// Lines that ever had a torn write-back: their contents may be damaged for
    /// good (a copy fetched mid-tear is written back whole), so staleness on
    /// them is the injected fault's doing, not the protocol's.
    var everTorn = Set<Int>()
    /// Torn write-backs still to land: (line, words not yet written, bytes, tags).
    var tornRemainder: [(line: Int, words: [Int], bytes: [UInt8], tags: [UInt32])] = []

    unowned(unsafe) let sim: Simulation

    init(sim: Simulation, nodes: Int, line: Int, regions spec: [(size: Int, owner: Int?)]) {
        self.sim = sim
        self.line = line
        var base = 0
        for r in spec {
            precondition(r.size % line == 0 && r.size % 8 == 0)
            regions.append(Region(base: base, size: r.size, owner: r.owner))
            base += r.size
        }
        size = base
        memory = [UInt8](repeating: 0, count: size)
        memoryTags = [UInt32](repeating: 0, count: size / 8)
        versions = [[UInt32]](repeating: [], count: size / 8)
        clocks = [[UInt32]](repeating: [UInt32](repeating: 0, count: nodes), count: nodes)
        knowledge = [UInt32](repeating: 0, count: nodes)
        committedKnowledge = knowledge
        self.nodes = (0..<nodes).map { _ in Node(bytes: base, line: line) }
        reach = [[Bool]](repeating: [Bool](repeating: true, count: spec.count), count: nodes)
        lineWriter = [Int?](repeating: nil, count: size / line)
    }

    func regionIndex(of offset: Int) -> Int {
        for (i, r) in regions.enumerated() where offset >= r.base && offset < r.base + r.size { return i }
        return -1
    }

    func checkReach(_ n: Int, _ offset: Int, _ count: Int) {
        let r = regionIndex(of: offset)
        guard r >= 0, offset + count <= regions[r].base + regions[r].size else {
            sim.fail(.outOfBounds, node: n, line: offset / line, "access [\(offset), +\(count)) outside every region")
            return
        }
        if !reach[n][r] && regions[r].owner != n {
            sim.fail(.unreachable, node: n, line: offset / line, "node \(n) has no link to region \(r)")
        }
    }

    /// The buffer `eligible` fills (callers use its answer before asking
    /// again, so no array is allocated per call).
    var eligibleScratch: [Int] = []

    // MARK: lines

    /// Brings `l` into node n's cache: from the owner's cache if the owner
    /// holds the line dirty (ThymesisFlow C1 snoop), else from memory.
    func fetch(_ n: Int, _ l: Int) {
        let node = nodes[n]
        let start = l * line
        let r = regionIndex(of: start)
        let owner = r >= 0 ? regions[r].owner : nil
        let bytes = start..<(start + line), words = (start / 8)..<((start + line) / 8)
        if let o = owner, o != n, nodes[o].present[l], nodes[o].dirty[l], !nodes[o].crashed {
            node.cache.replaceSubrange(bytes, with: nodes[o].cache[bytes])
            node.tags.replaceSubrange(words, with: nodes[o].tags[words])
        } else {
            node.cache.replaceSubrange(bytes, with: memory[bytes])
            node.tags.replaceSubrange(words, with: memoryTags[words])
        }
        node.present[l] = true
        node.dirty[l] = false
        node.fetchedAt[l] = commits
    }

    /// Writes node n's copy of `l` to memory: the whole line, or with torn
    /// write-backs a random part now and the rest at a later operation.
    func writeBack(_ n: Int, _ l: Int) {
        let node = nodes[n]
        let start = l * line
        // Write-backs of one line land in order: finish an earlier torn one first.
        while let i = tornRemainder.firstIndex(where: { $0.line == l }) { completeTorn(at: i) }
        let words = Array((start / 8)..<((start + line) / 8))
        if sim.config.tornWriteBacks, !sim.settingUp, sim.rng.chance(ppm: 250_000) {
            let cut = 1 + sim.rng.below(words.count - 1)
            let now = words.shuffledDeterministically(&sim.rng)
            for w in now[..<cut] {
                for i in 0..<8 { memory[w * 8 + i] = node.cache[w * 8 + i] }
                memoryTags[w] = node.tags[w]
            }
            let rest = Array(now[cut...])
            tornRemainder.append((l, rest, Array(node.cache[start..<(start + line)]), Array(node.tags[(start / 8)..<((start + line) / 8)])))
            everTorn.insert(l)
            sim.trace(n, "torn-writeback", line: l, "\(cut)/\(words.count) words now")
        } else {
            memory.replaceSubrange(start..<(start + line), with: node.cache[start..<(start + line)])
            memoryTags.replaceSubrange((start / 8)..<((start + line) / 8), with: node.tags[(start / 8)..<((start + line) / 8)])
        }
        node.dirty[l] = false
    }

    /// Lands the rest of one torn write-back.
    func completeTorn(at index: Int = 0) {
        guard index < tornRemainder.count else { return }
        let t = tornRemainder.remove(at: index)
        let start = t.line * line
        for w in t.words {
            for i in 0..<8 { memory[w * 8 + i] = t.bytes[w * 8 - start + i] }
            memoryTags[w] = t.tags[w - start / 8]
        }
    }

    /// A scribble (SPEC §7.6 "Link garbage"): `bytes` land in memory at
    /// `offset` from outside every node's cache — a stray DMA or a buggy
    /// process writing the host's memory. Each word written is a new
    /// version that is never published, so no reader is held to it and a
    /// reader that takes it has read memory as it is.
    func scribble(at offset: Int, _ bytes: [UInt8]) {
        precondition(offset % 8 == 0 && bytes.count % 8 == 0 && offset + bytes.count <= size)
        let k = nodes.count
        for i in 0..<(bytes.count / 8) {
            let w = offset / 8 + i
            serial &+= 1
            writerOf.append(0)
            publishedStamp.append(.max)
            publishedStep.append(0)
            knowledge.append(contentsOf: [UInt32](repeating: 0, count: k))
            committedKnowledge.append(contentsOf: [UInt32](repeating: 0, count: k))
            publishedCommit.append(.max)
            versions[w].append(serial)
            memoryTags[w] = serial
            for j in 0..<8 { memory[w * 8 + j] = bytes[i * 8 + j] }
        }
    }

    func dropLine(_ n: Int, _ l: Int, reason: String) {
        let node = nodes[n]
        guard node.present[l] else { return }
        if node.dirty[l] { writeBack(n, l) }
        node.present[l] = false
        sim.trace(n, reason, line: l, "")
    }

    func prefetch(_ n: Int, _ l: Int) {
        guard !nodes[n].present[l], !nodes[n].crashed else { return }
        let r = regionIndex(of: l * line)
        guard r >= 0, reach[n][r] || regions[r].owner == n else { return }
        fetch(n, l)
        sim.trace(n, "prefetch", line: l, "")
    }

    // MARK: loads

    /// A load by node n: own pending stores, then cache (even stale), then a
    /// miss. Checks the bytes against the committed truth (stale read).
    func load(_ n: Int, _ offset: Int, _ count: Int, into out: UnsafeMutableRawBufferPointer, checked: Bool = true) {
        checkReach(n, offset, count)
        let node = nodes[n]
        let first = offset / line, last = (offset + count - 1) / line
        for l in first...last where !node.present[l] { fetch(n, l) }
        node.cache.withUnsafeBytes { out.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + count)])) }
        var forwarded = Set<Int>()
        if !node.queue.isEmpty {
            forwardPending(node, offset, count, out, &forwarded)
        }
        guard checked else { return }
        for w in (offset / 8)...((offset + count - 1) / 8) where forwarded.isEmpty || !forwarded.contains(w) {
            let t = Int(node.tags[w])
            let next = Int(successor(of: UInt32(t), in: versions[w]))
            if next != 0, publishedStamp[next] != .max, clocks[n][writerOf[next]] >= publishedStamp[next], everTorn.isEmpty || !everTorn.contains(w * 8 / line) {
                sim.staleRead(node: n, word: w, tag: UInt32(t), truth: UInt32(next), at: publishedStep[next])
                return
            }
            learn(n, from: t, fetchedAt: node.fetchedAt[w * 8 / line])
        }
    }

    /// Store-to-load forwarding from node's own pending stores.
    private func forwardPending(_ node: Node, _ offset: Int, _ count: Int, _ out: UnsafeMutableRawBufferPointer, _ forwarded: inout Set<Int>) {
        for p in node.queue {
            if case .store(let o, let bytes, _) = p, o < offset + count, o + bytes.count > offset {
                for i in max(o, offset)..<min(o + bytes.count, offset + count) {
                    out[i - offset] = bytes[i - o]
                    forwarded.insert(i / 8)
                }
            }
        }
    }

    /// The first version of a word after serial t (0: none).
    private func successor(of t: UInt32, in list: [UInt32]) -> UInt32 {
        var lo = 0, hi = list.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if list[mid] <= t { lo = mid + 1 } else { hi = mid }
        }
        return lo < list.count ? list[lo] : 0
    }

    /// Node n read a value produced by store `t`: it now knows what the
    /// writer knew when the value left it.
    /// A read of store t teaches what its writer knew when it stored — and,
    /// if the reader's copy was fetched after t's publication, what the
    /// writer knew when it published. A copy fetched before (a snoop served
    /// it from the writer's dirty line) teaches nothing of that publication:
    /// its sibling stores of the same publication may be missing from the
    /// copy, and reading their older values is not stale.
    private func learn(_ n: Int, from t: Int, fetchedAt: Int) {
        let k = nodes.count
        if publishedCommit[t] <= fetchedAt {
            for i in 0..<k where committedKnowledge[t * k + i] > clocks[n][i] { clocks[n][i] = committedKnowledge[t * k + i] }
        } else {
            for i in 0..<k where knowledge[t * k + i] > clocks[n][i] { clocks[n][i] = knowledge[t * k + i] }
        }
    }

    func cachedLines(_ n: Int) -> [Int] { nodes[n].present.indices.filter { nodes[n].present[$0] } }

    /// 64-bit fingerprint of memory, caches and store buffers (explore states).
    func fingerprint(extra: UInt64) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ extra
        @inline(__always) func mix(_ v: UInt64) { h = (h ^ v) &* 0x100_0000_01b3 }
        func words(_ bytes: [UInt8], _ range: Range<Int>) {
            bytes.withUnsafeBytes { b in
                var i = range.lowerBound
                while i < range.upperBound { mix(b.loadUnaligned(fromByteOffset: i, as: UInt64.self)); i += 8 }
            }
        }
        words(memory, 0..<memory.count)
        for node in nodes {
            for l in node.present.indices where node.present[l] {
                mix(UInt64(l) << 1 | (node.dirty[l] ? 1 : 0))
                words(node.cache, (l * line)..<((l + 1) * line))
            }
            mix(UInt64(node.queue.count))
            for p in node.queue {
                switch p {
                case .store(let o, let bytes, let rel):
                    mix(UInt64(o) << 1 | (rel ? 1 : 0))
                    for b in bytes { mix(UInt64(b)) }
                case .flush(let l, _): mix(UInt64(l) | 1 << 40)
                }
            }
        }
        return h
    }
}

extension Array {
    /// Fisher–Yates with the run's generator: deterministic per seed.
    func shuffledDeterministically(_ rng: inout SplitMix64) -> [Element] {
        var a = self
        if a.count < 2 { return a }
        for i in stride(from: a.count - 1, to: 0, by: -1) { a.swapAt(i, rng.below(i + 1)) }
        return a
    }
}
