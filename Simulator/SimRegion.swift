import PlenumMemory

/// One region of the simulated address space as its own mapping: offsets
/// are region-relative, as the store's object locations are (SPEC §10.7).
/// Every call forwards to the node's `SimMemory`, schedule point included.
struct SimRegion: SharedMemory {
    let memory: SimMemory
    let base: Int
    let size: Int

    var lineSize: Int { memory.lineSize }
    var flushGranule: Int { memory.flushGranule }
    var mutants: ProtocolMutants { memory.mutants }

    private func at(_ offset: Int, _ count: Int) -> Int {
        precondition(offset >= 0 && count >= 0 && offset <= size - count, "access [\(offset), +\(count)) outside a region of \(size) bytes")
        return base + offset
    }

    func load64(at offset: Int, ordering: LoadOrdering) -> UInt64 { memory.load64(at: at(offset, 8), ordering: ordering) }
    func store64(_ value: UInt64, at offset: Int, ordering: StoreOrdering) { memory.store64(value, at: at(offset, 8), ordering: ordering) }
    func read<R, E: Error>(at offset: Int, count: Int, _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try memory.read(at: at(offset, count), count: count, body)
    }
    func write<R, E: Error>(at offset: Int, count: Int, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try memory.write(at: at(offset, count), count: count, body)
    }
    func flush(at offset: Int, count: Int) { memory.flush(at: at(offset, count), count: count) }
    func invalidate(at offset: Int, count: Int) { memory.invalidate(at: at(offset, count), count: count) }
    func fence(_ kind: Fence) { memory.fence(kind) }
}
