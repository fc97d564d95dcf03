/// The store buffers of `NonCoherentMemory` (SPEC §7.1): stores queued per
/// node, which of them may drain next, draining, commit, and a crash that
/// loses what was queued.
extension NonCoherentMemory {
    func enqueue(_ n: Int, _ p: Pending) { nodes[n].queue.append(p) }

    /// Indices of queue entries that may drain now (SPEC §7.1 ordering rules).
    func eligible(_ n: Int) -> [Int] {
        let q = nodes[n].queue
        var result = eligibleScratch
        eligibleScratch = []
        result.removeAll(keepingCapacity: true)
        defer { eligibleScratch = result }
        if q.isEmpty { return result }
        if sim.config.ordering == .tso { result.append(0); return result }
        outer: for i in q.indices {
            for j in 0..<i {
                switch (q[j], q[i]) {
                case (.store, .store(_, _, true)):
                    continue outer // a releasing store waits for every earlier store —
                                   // not for earlier flushes: only a fence orders those
                case (.store(let oj, let bj, _), .store(let oi, let bi, _)):
                    if oj / 8 <= (oi + bi.count - 1) / 8 && oi / 8 <= (oj + bj.count - 1) / 8 { continue outer }
                case (.store(let oj, let bj, _), .flush(_, let w)):
                    if oj / 8 <= w && w <= (oj + bj.count - 1) / 8 { continue outer }
                case (.flush(let lj, _), .flush(let li, _)):
                    if lj == li { continue outer }
                default: break
                }
            }
            result.append(i)
        }
        return result
    }

    /// Performs queue entry `i` of node n.
    func drain(_ n: Int, _ i: Int) {
        let node = nodes[n]
        let p = node.queue.remove(at: i)
        switch p {
        case .store(let o, let bytes, _):
            let first = o / line, last = (o + bytes.count - 1) / line
            for l in first...last {
                if !node.present[l] { fetch(n, l) }
                if let w = lineWriter[l], w != n {
                    sim.fail(.wrongWriter, node: n, line: l, "node \(n) stores to line \(l), which the layout gives to node \(w)")
                }
                for m in nodes.indices where m != n && nodes[m].present[l] && nodes[m].dirty[l] {
                    sim.fail(.twoDirty, node: n, line: l, "nodes \(m) and \(n) both hold line \(l) dirty")
                }
                node.dirty[l] = true
            }
            serial &+= 1
            writerOf.append(n)
            publishedStamp.append(.max)
            publishedStep.append(0)
            knowledge.append(contentsOf: clocks[n])
            committedKnowledge.append(contentsOf: clocks[n])
            publishedCommit.append(.max)
            node.cache.withUnsafeMutableBytes { c in bytes.withUnsafeBytes { c.baseAddress!.advanced(by: o).copyMemory(from: $0.baseAddress!, byteCount: $0.count) } }
            for w in (o / 8)...((o + bytes.count - 1) / 8) {
                versions[w].append(serial)
                node.tags[w] = serial
                node.unflushed.append((w, serial))
            }
            sim.trace(n, "drain-store", line: first, "@\(o) \(bytes.count)B #\(serial)")
        case .flush(let l, _):
            node.flushedSinceFence += node.unflushed
            node.unflushed.removeAll(keepingCapacity: true)
            if node.present[l] {
                if node.dirty[l] { writeBack(n, l) }
                node.present[l] = false
            }
            sim.trace(n, "drain-flush", line: l, "")
        }
    }

    /// A fence completed. The writer's protocol now considers published every
    /// store it followed with a flush (of any line) before this fence — the
    /// publish sequence of SPEC §2 — so those values become ground truth.
    /// A store never followed by a flush is not published by a fence alone;
    /// it is once a later flush and fence follow it (a doorbell, say).
    /// (What the writer merely believes published and its crash then lost
    /// is revoked by `crash`.)
    func commit(_ n: Int) {
        guard !nodes[n].flushedSinceFence.isEmpty else { return }
        // During set-up everything is published with stamp 0: known to all.
        let stamp: UInt32
        if sim.settingUp { stamp = 0 } else { clocks[n][n] += 1; stamp = clocks[n][n] }
        commits += 1
        for (_, s) in nodes[n].flushedSinceFence where publishedStamp[Int(s)] == .max {
            publishedStamp[Int(s)] = stamp
            publishedStep[Int(s)] = sim.step
            publishedCommit[Int(s)] = commits
            let k = nodes.count
            for i in 0..<k { committedKnowledge[Int(s) * k + i] = clocks[n][i] }
        }
        nodes[n].flushedSinceFence.removeAll(keepingCapacity: true)
    }

    /// A crash: the cache (dirty lines included) and store buffer are lost.
    func crash(_ n: Int) {
        let node = nodes[n]
        node.crashed = true
        node.queue.removeAll()
        node.unflushed.removeAll()
        node.flushedSinceFence.removeAll()
        let perLine = line / 8
        for l in node.present.indices where node.present[l] {
            if node.dirty[l] {
                // Stores of this node that its protocol believed published
                // (a flush of another line and a fence followed them) but
                // that never left its cache die with it: memory keeps the
                // older value, which is then the truth, not a stale read
                // (issue 24, seed 56410: a slot header, its payload lines
                // flushed, lost before the commit's flush).
                for w in (l * perLine)..<((l + 1) * perLine) {
                    let kept = memoryTags[w]
                    for v in versions[w].reversed() {
                        if v == kept { break }
                        if writerOf[Int(v)] == n { publishedStamp[Int(v)] = .max }
                    }
                }
            }
            node.present[l] = false
            node.dirty[l] = false
        }
    }

    /// Lines node n holds (for eviction choices).
}
