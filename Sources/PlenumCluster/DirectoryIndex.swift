import PlenumMemory
import PlenumStore

/// The directory index (SPEC §10.4 "Directory index"): a copy of a home's
/// directory entries in its own region, in lines only the home writes, so
/// a peer that maps that region answers a lookup by reading memory — no
/// message, no wake-up of the home. Every answer it cannot give for sure
/// (a line being written, a bucket that overflowed, a torn or scribbled
/// line) is `nil`: ask the home by message, as without an index.
///
/// ```
///  segment "directory-index" in the home's region: L + B·L bytes
///  header line (written once at format, immutable)
///   0 magic u64 "PLNMDIRX"
///   8 version u32 | line u32
///  16 buckets u32 | perBucket u32
///  24 incarnation u64 (the home's, §10.3)
///  32 crc32c u32 over bytes 0..<32 | 0 u32
///
///  bucket b at +L + b·L (one per line; writer: the home only)
///   0 seq u64            even: stable, odd: being rewritten
///   8 overflow u32 | 0   entries of this bucket kept in private memory only
///  16 entry 0            ┌ id bytes 0..<8 u64 ┬ id bytes 8..<16 u64 ┐
///  40 entry 1            └ id bytes 16..<20 u32 | owner u16 | state u8 | 0 ┘
///  …  perBucket = (L − 16) / 24 entries (2 for L = 64, 4 for 128, 10 for 256)
///  state: 0 empty slot, 1 reserved (owner = the reserving node), 2 sealed at owner
///  owner 0…63 and bits 56…63 zero, else the line is scribbled: ask
///  bucket(id) = mix(key(id)) mod B, B a power of two (key, mix: §10.4)
/// ```
public struct DirectoryIndexLayout: Equatable, Sendable {
    public static let segmentName = "directory-index"
    public static let magic: UInt64 = 0x5852_4944_4D4E_4C50 // "PLNMDIRX"
    public static let version: UInt32 = 1
    public static let entryBytes = 24
    public static let bucketHeaderBytes = 16
    public static let maxBuckets = 1 << 24
    /// Node ids are 0…63 (SPEC §10.1).
    public static let maxNodes: NodeID = 64

    public let base: Int
    public let lineSize: Int
    public let buckets: Int

    public var perBucket: Int { (lineSize - Self.bucketHeaderBytes) / Self.entryBytes }
    public var totalBytes: Int { lineSize * (1 + buckets) }
    public var capacity: Int { buckets * perBucket }

    /// - Returns: nil unless `buckets` is a power of two in 1...2^24 and the
    ///   line holds at least one entry.
    public init?(base: Int, lineSize: Int, buckets: Int) {
        guard base >= 0, lineSize >= 64, base % lineSize == 0, buckets >= 1, buckets <= Self.maxBuckets,
              buckets & (buckets - 1) == 0 else { return nil }
        self.base = base
        self.lineSize = lineSize
        self.buckets = buckets
    }

    /// The smallest layout with room for `entries` (rounded up to a power of two of buckets).
    public init?(base: Int, lineSize: Int, entries: Int) {
        let per = (lineSize - Self.bucketHeaderBytes) / Self.entryBytes
        guard per > 0, entries > 0 else { return nil }
        var b = 1
        while b * per < entries && b < Self.maxBuckets { b <<= 1 }
        self.init(base: base, lineSize: lineSize, buckets: b)
    }

    public func bucket(of id: ObjectID) -> Int { Int(truncatingIfNeeded: Home.mix(id.prefix64) & UInt64(buckets - 1)) }
    public func bucketOffset(_ b: Int) -> Int { base + lineSize * (1 + b) }
    public func entryOffset(_ b: Int, _ k: Int) -> Int { bucketOffset(b) + Self.bucketHeaderBytes + k * Self.entryBytes }

    // MARK: header

    /// Writes the header and empties every bucket (format; the home, once per life).
    /// Flush rule: everything is written back before the segment is published.
    public func format<M: SharedMemory>(incarnation: UInt64, in m: M) {
        m.write(at: base, count: lineSize) { b in
            b.initializeMemory(as: UInt8.self, repeating: 0)
            b.storeBytes(of: Self.magic.littleEndian, toByteOffset: 0, as: UInt64.self)
            b.storeBytes(of: Self.version.littleEndian, toByteOffset: 8, as: UInt32.self)
            b.storeBytes(of: UInt32(lineSize).littleEndian, toByteOffset: 12, as: UInt32.self)
            b.storeBytes(of: UInt32(buckets).littleEndian, toByteOffset: 16, as: UInt32.self)
            b.storeBytes(of: UInt32(perBucket).littleEndian, toByteOffset: 20, as: UInt32.self)
            b.storeBytes(of: incarnation.littleEndian, toByteOffset: 24, as: UInt64.self)
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<32]))
            b.storeBytes(of: crc.littleEndian, toByteOffset: 32, as: UInt32.self)
        }
        var b = 0
        while b < buckets {
            let n = min(buckets - b, 4096)
            _ = m.write(at: bucketOffset(b), count: n * lineSize) { $0.initializeMemory(as: UInt8.self, repeating: 0) }
            b += n
        }
        m.flush(at: base, count: totalBytes)
        m.fence(.store)
    }

    /// Reads and checks a header at `base` in a segment of `length` bytes
    /// (a reader, once per mapping of the home's region). Invalidates first:
    /// the header may be a new life's.
    public static func read<M: SharedMemory>(at base: Int, length: Int, in m: M) -> (layout: DirectoryIndexLayout, incarnation: UInt64)? {
        let line = m.lineSize
        guard base >= 0, base % line == 0, length >= line, base <= m.size - line else { return nil }
        m.invalidate(at: base, count: line)
        m.fence(.full)
        return m.read(at: base, count: line) { b -> (DirectoryIndexLayout, UInt64)? in
            guard UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 0, as: UInt64.self)) == magic,
                  UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) == version,
                  Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 12, as: UInt32.self))) == line,
                  CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<32])) == UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 32, as: UInt32.self))
            else { return nil }
            let buckets = Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 16, as: UInt32.self)))
            let per = Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 20, as: UInt32.self)))
            guard let l = DirectoryIndexLayout(base: base, lineSize: line, buckets: buckets), l.perBucket == per,
                  l.totalBytes <= length, base + l.totalBytes <= m.size else { return nil }
            return (l, UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 24, as: UInt64.self)))
        }
    }
}

/// What a peek of a home's index says of an id.
public enum IndexAnswer: Equatable, Sendable {
    case absent
    /// Reserved by that node, not sealed yet.
    case reserved(by: NodeID)
    case sealed(owner: NodeID)
}

extension DirectoryIndexLayout {
    /// A reader's seqlock read of `id`'s bucket (SPEC §10.4 "Directory index",
    /// reader rule). nil: ask the home.
    ///
    /// ```
    ///  bucket = granules g0 (holds seq) … gk of this memory's write-back unit
    ///  invalidate g0, fence ─ s1 ← seq (acquiring) ─ odd? nil
    ///  invalidate g1…gk, fence ─ copy the line      (g1…gk fetched after s1;
    ///                                                g0 in the fetch s1 came from, or later)
    ///  fence, invalidate g0, fence ─ s2 ← seq ─ s2 ≠ s1? nil
    ///  id in a slot: its state │ no slot, overflow 0: absent │ else nil
    /// ```
    /// The home's memory never shows an even `seq` over a half-written
    /// bucket (writer rule), and `seq` only grows, so s1 = s2 means no
    /// rewrite began between the two loads: every granule of the copy was
    /// fetched between them, so the copy is one state of the bucket, at
    /// least as new as any the home had acknowledged before the read began.
    public func peek<M: SharedMemory>(_ id: ObjectID, in m: M) -> IndexAnswer? {
        let off = bucketOffset(bucket(of: id))
        let g = min(max(m.flushGranule, 8), lineSize)
        // Ordering: acquiring loads of a home-written line; flush rule: the
        // reader only invalidates (it never writes these lines). SPEC §10.4.
        let invalidates = !m.mutants.contains(.indexReadWithoutInvalidate)    // simulator only (§7.4)
        if invalidates { m.invalidate(at: off, count: g) }
        m.fence(.full)
        let s1 = m.load64(at: off, ordering: .acquiring)
        guard s1 & 1 == 0 else { return nil }
        if g < lineSize {
            if invalidates { m.invalidate(at: off + g, count: lineSize - g) }
            m.fence(.full)
        }
        let (w0, w1, w2) = id.words
        let per = perBucket
        let found: IndexAnswer?? = m.read(at: off, count: lineSize) { b -> IndexAnswer?? in
            let overflow = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            for k in 0..<per {
                let e = Self.bucketHeaderBytes + k * Self.entryBytes
                let c = UInt64(littleEndian: b.loadUnaligned(fromByteOffset: e + 16, as: UInt64.self))
                let state = UInt8(truncatingIfNeeded: c >> 48)
                let owner = NodeID(UInt16(truncatingIfNeeded: c >> 32))
                guard state != 0,
                      UInt64(littleEndian: b.loadUnaligned(fromByteOffset: e, as: UInt64.self)) == w0,
                      UInt64(littleEndian: b.loadUnaligned(fromByteOffset: e + 8, as: UInt64.self)) == w1,
                      UInt32(truncatingIfNeeded: c) == w2 else { continue }
                guard c >> 56 == 0, owner < Self.maxNodes else { return .some(nil) }    // scribbled: ask
                switch state {
                case 1: return .some(.reserved(by: owner))
                case 2: return .some(.sealed(owner: owner))
                default: return .some(nil)
                }
            }
            return overflow == 0 ? .some(.absent) : .some(nil)
        }
        m.fence(.full)
        if invalidates { m.invalidate(at: off, count: g) }
        m.fence(.full)
        guard m.load64(at: off, ordering: .acquiring) == s1, let answer = found else { return nil }
        return answer
    }
}

/// The home's side: its private record of what each slot of its index
/// holds, and the writer rule. Only the home writes its index, so it never
/// reads it back from memory.
public struct DirectoryIndexWriter: Sendable {
    public let layout: DirectoryIndexLayout
    private var seq: [UInt64]
    private var slots: [ObjectID?]
    private var slotOf: [ObjectID: Int] = [:]
    private var overflow: [UInt32]
    private var overflowed: Set<ObjectID> = []
    /// Bucket rewrites, and entries kept in private memory only (status).
    public private(set) var writes = 0
    public var overflowedCount: Int { overflowed.count }
    public var indexed: Int { slotOf.count }

    public init(layout: DirectoryIndexLayout) {
        self.layout = layout
        seq = Array(repeating: 0, count: layout.buckets)
        slots = Array(repeating: nil, count: layout.capacity)
        overflow = Array(repeating: 0, count: layout.buckets)
    }

    /// Records `id`'s entry (nil: removed) in the index.
    public mutating func update<M: SharedMemory>(_ id: ObjectID, _ answer: IndexAnswer?, in m: M) {
        let b = layout.bucket(of: id), per = layout.perBucket, first = b * per
        var stores: [(offset: Int, value: UInt64)] = []
        if let answer, answer != .absent {
            if let s = slotOf[id] {
                stores = [(layout.entryOffset(b, s - first) + 16, Self.word2(id, answer))]
            } else if overflowed.contains(id) {
                return                                  // still counted in `overflow`: readers ask
            } else if let s = (first..<(first + per)).first(where: { slots[$0] == nil }) {
                slots[s] = id
                slotOf[id] = s
                let (w0, w1, _) = id.words
                let e = layout.entryOffset(b, s - first)
                stores = [(e, w0), (e + 8, w1), (e + 16, Self.word2(id, answer))]
            } else {
                overflowed.insert(id)
                overflow[b] += 1
                stores = [(layout.bucketOffset(b) + 8, UInt64(overflow[b]))]
            }
        } else if let s = slotOf.removeValue(forKey: id) {
            slots[s] = nil
            stores = [(layout.entryOffset(b, s - first) + 16, 0)]
        } else if overflowed.remove(id) != nil {
            overflow[b] -= 1
            stores = [(layout.bucketOffset(b) + 8, UInt64(overflow[b]))]
        } else {
            return
        }
        Self.rewrite(layout.bucketOffset(b), line: layout.lineSize, seq: &seq[b], stores, in: m)
        writes += 1
    }

    /// Word 2 of an entry: id bytes 16..<20, owner (node ids are 0…63), state.
    static func word2(_ id: ObjectID, _ a: IndexAnswer) -> UInt64 {
        let (_, _, tail) = id.words
        switch a {
        case .absent: return 0
        case .reserved(let by): return UInt64(tail) | UInt64(by & 0xFFFF) << 32 | 1 << 48
        case .sealed(let o): return UInt64(tail) | UInt64(o & 0xFFFF) << 32 | 2 << 48
        }
    }

    /// The writer rule (SPEC §10.4 "Directory index"):
    /// ```
    ///  seq ← seq+1 (odd), flush, fence ─ stores of the change, flush, fence ─ seq ← seq+1 (even), flush, fence
    /// ```
    /// Memory never holds an even `seq` with part of a change: whatever a
    /// write-back or eviction publishes between the fences carries the odd one.
    static func rewrite<M: SharedMemory>(_ off: Int, line: Int, seq: inout UInt64, _ stores: [(offset: Int, value: UInt64)], in m: M) {
        // Ordering: the home's own line; flush rule: write back after each
        // of the three steps, fence before the next (SPEC §10.4).
        seq &+= 1
        m.store64(seq, at: off, ordering: .relaxed)
        m.flush(at: off, count: line)
        m.fence(.store)
        for (o, v) in stores { m.store64(v, at: o, ordering: .relaxed) }
        m.flush(at: off, count: line)
        m.fence(.store)
        seq &+= 1
        m.store64(seq, at: off, ordering: .releasing)
        m.flush(at: off, count: line)
        m.fence(.store)
    }
}
