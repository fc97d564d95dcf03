import PlenumMemory
import PlenumStore

/// A store's view of its cluster, published for its own clients (SPEC
/// §10.4 "Client peeks"): who is live, in which life, and the handle the
/// store gave each peer's region — what a client needs to find an id's home
/// and read the home's directory index itself, as the store would.
///
/// ```
///  segment "cluster-view" in the store's region, 4096 bytes; writer: the
///  store only; readers: its clients (one cache domain, §9.6: no flushes)
///   0 seq u64            even: stable, odd: being rewritten; only grows
///   8 magic u32 "PLVW"   | 12 version u16 = 1 | 14 me u16 (this node)
///  16 live u64           bit n: node n is live in the store's view (bit me set)
///  24 zero u64
///  32 + 16·n, n = 0…63   incarnation u64 (0 unless live)
///                        | handle u32 (§10.7; 0 for me) | flags u32 (bit 0: the
///                          store maps n's region, so n's index may be read)
///  1056 … 4095 zero
/// ```
public struct ClusterViewLayout: Equatable, Sendable {
    public static let segmentName = "cluster-view"
    public static let segmentBytes = 4096
    public static let magic: UInt32 = 0x5756_4C50   // "PLVW"
    public static let version: UInt16 = 1
    static let rowsAt = 32
    static let rowBytes = 16
    public static let usedBytes = rowsAt + 64 * rowBytes

    public let base: Int

    /// nil unless the record fits a segment of `length` bytes at `base`
    /// (8-byte aligned) inside memory of `size` bytes.
    public init?(base: Int, length: Int, size: Int) {
        guard base >= 0, base % 8 == 0, length >= Self.usedBytes, base <= size - Self.usedBytes else { return nil }
        self.base = base
    }

    /// One peer as the view shows it.
    public struct Member: Equatable, Sendable {
        public var incarnation: UInt64
        public var handle: Int
        public var mapped: Bool
        public init(incarnation: UInt64, handle: Int, mapped: Bool) {
            self.incarnation = incarnation
            self.handle = handle
            self.mapped = mapped
        }
    }

    /// What a reader copied: this node and the live members.
    public struct View: Equatable, Sendable {
        public var me: NodeID
        /// Live nodes, this one first then ascending (the order `Home.of` is given).
        public var live: [NodeID]
        public var members: [NodeID: Member]
    }

    // MARK: writer (the store)

    /// Rewrites the record (the store, before it carries out anything the
    /// membership change caused: SPEC §10.4 "Client peeks"). `seq` is the
    /// store's private copy of the word.
    ///
    /// ```
    ///  seq ← seq+1 (odd, relaxed); fence(.store) ─ the rows ─ fence(.store); seq ← seq+1 (even, releasing)
    /// ```
    public func write<M: SharedMemory>(me: NodeID, members: [NodeID: Member], seq: inout UInt64, in m: M) {
        // Ordering: the store's own words, read only on its node; flush
        // rule: none (one cache domain, SPEC §9.6 "Cache domain").
        seq &+= 1
        m.store64(seq, at: base, ordering: .relaxed)
        m.fence(.store)
        m.write(at: base + 8, count: Self.usedBytes - 8) { b in
            b.initializeMemory(as: UInt8.self, repeating: 0)
            b.storeBytes(of: Self.magic.littleEndian, toByteOffset: 0, as: UInt32.self)
            b.storeBytes(of: Self.version.littleEndian, toByteOffset: 4, as: UInt16.self)
            b.storeBytes(of: UInt16(me).littleEndian, toByteOffset: 6, as: UInt16.self)
            var live: UInt64 = 1 << UInt64(me & 63)
            for (n, row) in members where n < 64 {
                live |= 1 << UInt64(n)
                let at = Self.rowsAt - 8 + Self.rowBytes * Int(n)
                b.storeBytes(of: row.incarnation.littleEndian, toByteOffset: at, as: UInt64.self)
                b.storeBytes(of: UInt32(truncatingIfNeeded: row.handle).littleEndian, toByteOffset: at + 8, as: UInt32.self)
                b.storeBytes(of: UInt32(row.mapped ? 1 : 0).littleEndian, toByteOffset: at + 12, as: UInt32.self)
            }
            b.storeBytes(of: live.littleEndian, toByteOffset: 8, as: UInt64.self)
        }
        m.fence(.store)
        seq &+= 1
        m.store64(seq, at: base, ordering: .releasing)
    }

    // MARK: reader (a client of the store)

    /// The sequence word (acquiring): a reader that copied the view at this
    /// even value still holds it.
    public func sequence<M: SharedMemory>(in m: M) -> UInt64 { m.load64(at: base, ordering: .acquiring) }

    /// A seqlock copy of the record: nil while it is being rewritten, or if
    /// it is not a well-formed record (then the reader asks the store).
    ///
    /// ```
    ///  s1 ← seq (acquiring), odd: nil ─ copy ─ fence(.full) ─ s2 ← seq; s2 ≠ s1: nil
    /// ```
    public func read<M: SharedMemory>(in m: M) -> (view: View, seq: UInt64)? {
        let s1 = m.load64(at: base, ordering: .acquiring)
        guard s1 & 1 == 0, s1 != 0 else { return nil }
        let view: View? = m.read(at: base, count: Self.usedBytes) { b -> View? in
            guard UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) == Self.magic,
                  UInt16(littleEndian: b.loadUnaligned(fromByteOffset: 12, as: UInt16.self)) == Self.version else { return nil }
            let me = NodeID(UInt16(littleEndian: b.loadUnaligned(fromByteOffset: 14, as: UInt16.self)))
            let live = UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
            guard me < 64, live & (1 << UInt64(me)) != 0 else { return nil }
            var v = View(me: me, live: [me], members: [:])
            for n in 0..<NodeID(64) where live & (1 << UInt64(n)) != 0 {
                let at = Self.rowsAt + Self.rowBytes * Int(n)
                let row = Member(incarnation: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt64.self)),
                                 handle: Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: at + 8, as: UInt32.self))),
                                 mapped: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: at + 12, as: UInt32.self)) & 1 != 0)
                v.members[n] = row
                if n != me { v.live.append(n) }
            }
            return v
        }
        m.fence(.full)
        guard let view, m.load64(at: base, ordering: .acquiring) == s1 else { return nil }
        return (view, s1)
    }
}
