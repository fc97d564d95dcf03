import PlenumMemory

/// The simulator's implementation of the memory-access seam for one node
/// (SPEC.md §7.1): the production ring and region code run on it unchanged.
/// Every call is one schedule point, then one operation of the model.
public struct SimMemory: SharedMemory {
    unowned(unsafe) let sim: Simulation
    public let node: Int

    init(sim: Simulation, node: Int) {
        self.sim = sim
        self.node = node
    }

    public var lineSize: Int { sim.config.lineSize }
    public var flushGranule: Int { sim.config.lineSize }
    public var size: Int { sim.mem.size }
    public var mutants: ProtocolMutants { sim.config.mutants }

    private var dead: Bool { sim.crashed[node] }

    public func load64(at offset: Int, ordering: LoadOrdering) -> UInt64 {
        precondition(offset & 7 == 0, "unaligned 8-byte load at \(offset)")
        sim.opPoint(node)
        if dead { return 0 }
        var v: UInt64 = 0
        withUnsafeMutableBytes(of: &v) { sim.mem.load(node, offset, 8, into: $0) }
        sim.trace(node, "load64", line: offset / lineSize, "@\(offset) = \(v)")
        sim.noteOp(node, 1, offset, v)
        return UInt64(littleEndian: v)
    }

    public func store64(_ value: UInt64, at offset: Int, ordering: StoreOrdering) {
        precondition(offset & 7 == 0, "unaligned 8-byte store at \(offset)")
        sim.opPoint(node)
        if dead { return }
        let bytes = withUnsafeBytes(of: value.littleEndian) { Array($0) }
        sim.mem.enqueue(node, .store(offset: offset, bytes: bytes, releasing: ordering == .releasing))
        sim.trace(node, ordering == .releasing ? "store64.rel" : "store64", line: offset / lineSize, "@\(offset) = \(value)")
        sim.noteOp(node, 3, offset, value)
        drainIfLong()
    }

    public func read<R, E: Error>(at offset: Int, count: Int, _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        precondition(offset >= 0 && count >= 0 && offset <= size - count, "read outside the simulated memory")
        sim.opPoint(node)
        // A private copy on the stack (no heap allocation per read).
        let result = withUnsafeTemporaryAllocation(byteCount: max(count, 1), alignment: 8) { raw -> Result<R, E> in
            let buffer = UnsafeMutableRawBufferPointer(rebasing: raw[0..<count])
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            if !dead && count > 0 { sim.mem.load(node, offset, count, into: buffer) }
            sim.trace(node, "read", line: offset / lineSize, "@\(offset) \(count)B")
            if sim.bound != nil { sim.noteOp(node, 2, offset, buffer.reduce(UInt64(count)) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }) }
            return Result { () throws(E) -> R in try body(UnsafeRawBufferPointer(buffer)) }
        }
        return try result.get()
    }

    public func write<R, E: Error>(at offset: Int, count: Int, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        precondition(offset >= 0 && count >= 0 && offset <= size - count, "write outside the simulated memory")
        sim.opPoint(node)
        var buffer = [UInt8](repeating: 0, count: count)
        // The view starts as this node sees the bytes now (no staleness check:
        // the caller is about to overwrite them).
        if !dead && count > 0 { buffer.withUnsafeMutableBytes { sim.mem.load(node, offset, count, into: $0, checked: false) } }
        let outcome = buffer.withUnsafeMutableBytes { b in Result { () throws(E) -> R in try body(b) } }
        let result = try outcome.get()
        if dead || count == 0 { return result }
        // One store-buffer entry per line the write touches.
        var o = offset
        while o < offset + count {
            let end = min(offset + count, (o / lineSize + 1) * lineSize)
            sim.mem.enqueue(node, .store(offset: o, bytes: Array(buffer[(o - offset)..<(end - offset)]), releasing: false))
            o = end
        }
        sim.trace(node, "write", line: offset / lineSize, "@\(offset) \(count)B")
        if sim.bound != nil { sim.noteOp(node, 4, offset, buffer.reduce(UInt64(count)) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }) }
        drainIfLong()
        return result
    }

    public func flush(at offset: Int, count: Int) {
        sim.opPoint(node)
        if dead || count <= 0 { return }
        for l in (offset / lineSize)...((offset + count - 1) / lineSize) {
            sim.mem.enqueue(node, .flush(line: l, namedWord: l * lineSize / 8))
        }
        sim.trace(node, "flush", line: offset / lineSize, "@\(offset) \(count)B")
        sim.noteOp(node, 5, offset, UInt64(count))
    }

    public func invalidate(at offset: Int, count: Int) { flush(at: offset, count: count) }

    public func fence(_ kind: Fence) {
        sim.opPoint(node)
        if dead { return }
        sim.trace(node, kind == .full ? "fence.full" : "fence.store", line: -1, "\(sim.mem.nodes[node].queue.count) pending")
        sim.noteOp(node, 6, 0, 0)
        sim.fence(node)
    }

    /// A store buffer is finite: a long one drains its oldest eligible entry.
    private func drainIfLong() {
        if sim.mem.nodes[node].queue.count > 64, let first = sim.mem.eligible(node).first { sim.mem.drain(node, first) }
    }
}
