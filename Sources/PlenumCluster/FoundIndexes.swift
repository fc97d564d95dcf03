import PlenumMemory

/// Which directory index a reader found for each home (SPEC §10.4
/// "Directory index", reader): looked for once per life of the home (and
/// per region handle, for a client, §10.4 "Client peeks"); a life without
/// a usable index is looked for again every 1,024 lookups. The store's
/// reader (`PeerIndexes`) and a client's (`IndexPeeks`) keep one each.
/// A class: `find` may map anew, and its owner then calls `forget` while
/// `index(of:)` runs (a client's region fetch) — no access is held across
/// `find`, and what it found is for the new mapping.
///
/// ```
///  index(of: h, life, handle)
///    found for (life, handle) ─ an index ──────────────────▶ it
///                             └ none: 1,023 of 1,024 times ▶ nil
///    else find() ─ remembered for (life, handle) ──────────▶ its answer
/// ```
public final class FoundIndexes {
    public typealias Index = (layout: DirectoryIndexLayout, memory: MappedMemory)
    @usableFromInline struct Entry {
        @usableFromInline var life: UInt64
        @usableFromInline var handle: Int
        /// Holds the home's memory while found: the owner of the mapping
        /// calls `forget` whenever it maps anew.
        @usableFromInline var index: Index?
        @usableFromInline var misses = 0
        @usableFromInline init(life: UInt64, handle: Int, index: Index?) {
            self.life = life
            self.handle = handle
            self.index = index
        }
    }
    @usableFromInline var entries = [Entry?](repeating: nil, count: Int(DirectoryIndexLayout.maxNodes))

    public init() {}

    /// Home h's index in `life` (and region `handle`): the one found
    /// before, or what `find` finds now (nil: none usable).
    @inlinable public func index(of h: NodeID, life: UInt64, handle: Int = 0, find: () -> Index?) -> Index? {
        guard h < DirectoryIndexLayout.maxNodes else { return nil }
        let i = Int(h)
        if let e = entries[i], e.life == life, e.handle == handle {
            if let index = e.index { return index }
            entries[i]!.misses += 1
            if (e.misses + 1) % 1024 != 0 { return nil }
        }
        let index = find()
        entries[i] = Entry(life: life, handle: handle, index: index)
        return index
    }

    /// Everything found is let go (the mappings it holds too).
    public func forget() {
        for i in entries.indices where entries[i] != nil { entries[i] = nil }
    }
}

extension DirectoryIndexLayout {
    /// The index in segment `directory-index` (at `offset`, `length` bytes)
    /// of a home's region mapped as `m`, if its header is sound and names
    /// `life` (§10.4 reader); its lines are faulted in for reading.
    public static func found(at offset: Int, length: Int, in m: MappedMemory, mapping: Mapping, life: UInt64) -> FoundIndexes.Index? {
        guard let (l, named) = read(at: offset, length: length, in: m), named == life else { return nil }
        mapping.prefaultForReading(offset: l.base, count: l.totalBytes)
        return (l, m)
    }
}
