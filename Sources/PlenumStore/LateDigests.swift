import PlenumMemory

/// Objects sealed without their digest, waiting for it (SPEC §11.3 "Seal":
/// a store alone seals a Plasma client's object at once and takes its
/// digest when the loop would otherwise sleep, or when a verify or a list
/// needs it), oldest first, with the digest in progress.
///
/// ```
///  seal ─▶ add(id, location, created) ─▶ [ oldest … newest ]
///                                            │
///   idle loop: advance(≤ bytes) ─────────────┤ CRC32C of the next bytes of
///              … until finished ─▶ (id, created, digest) ─▶ recordDigest
///   verify: take(id) ─▶ the rest of that one at once
///   list:   advance(Int.max) until empty ─▶ every one at once
/// ```
///
/// One entry per id: a later seal of the same id (the first object was
/// deleted meanwhile) replaces the earlier one. Whether an entry still
/// names the object in the store is the caller's `isCurrent`; the store's
/// `recordDigest` checks it again.
public struct LateDigests: Sendable {
    struct Item: Sendable {
        let id: ObjectID
        let location: ObjectLocation
        let created: UInt64
        /// CRC32C of the first `done` bytes (SPEC §9.4 "Digest").
        var crc: UInt32 = 0
        var done = 0
        var total: Int { location.dataSize + location.metadataSize }
    }

    public struct Finished: Equatable, Sendable {
        public let id: ObjectID
        public let created: UInt64
        public let digest: UInt64
        public init(id: ObjectID, created: UInt64, digest: UInt64) {
            self.id = id
            self.created = created
            self.digest = digest
        }
    }

    var items: [ObjectID: Item] = [:]
    /// Ids in seal order from `head` on; an id whose entry was taken is
    /// skipped when it comes up (and appended again if sealed again).
    var order: [ObjectID] = []
    var head = 0

    /// Objects smaller than this are written back and digested at the
    /// seal (a few µs at most, and their readers then read them faster).
    public let minimumBytes: Int
    /// At most this many wait: past it a seal is digested at once, so a
    /// store that never idles keeps a bounded queue.
    public let limit: Int

    public init(minimumBytes: Int = 64 << 10, limit: Int = 4096) {
        precondition(minimumBytes > 0 && limit >= 0)
        self.minimumBytes = minimumBytes
        self.limit = limit
    }

    /// Whether a seal of `l` may leave its digest for later: an object of
    /// `minimumBytes` or more, while fewer than `limit` wait.
    public func admits(_ l: ObjectLocation) -> Bool {
        l.dataSize + l.metadataSize >= minimumBytes && items.count < limit
    }

    public var count: Int { items.count }
    public var isEmpty: Bool { items.isEmpty }
    public func contains(_ id: ObjectID) -> Bool { items[id] != nil }

    /// An object just sealed, its digest not taken.
    public mutating func add(_ id: ObjectID, location: ObjectLocation, created: UInt64) {
        // A replaced entry keeps its place in the order (and starts over).
        if items.updateValue(Item(id: id, location: location, created: created), forKey: id) == nil { order.append(id) }
    }

    /// Digests up to `bytes` more of the oldest entry `isCurrent` accepts
    /// (others are dropped); returns the entry once its digest is complete.
    public mutating func advance<M: SharedMemory>(_ memory: M, bytes: Int, isCurrent: (ObjectID, UInt64) -> Bool) -> Finished? {
        assert(bytes > 0)
        while let id = oldest() {
            guard var item = items[id], isCurrent(id, item.created) else { drop(id); continue }
            let n = min(bytes, item.total - item.done)
            if n > 0 {
                // Plain reads of the object's bytes, no invalidate: the
                // store's own region, read in the writer's cache domain
                // (SPEC §11.3 "Seal", §9.4).
                item.crc = memory.read(at: item.location.offset + item.done, count: n) { CRC32C.checksum($0, seed: item.crc) }
                item.done += n
            }
            guard item.done == item.total else { items[id] = item; return nil }
            drop(id)
            return Finished(id: id, created: item.created, digest: UInt64(item.crc))
        }
        return nil
    }

    /// The whole digest of `id` now (what is left of it), if it is waiting.
    public mutating func take<M: SharedMemory>(_ id: ObjectID, _ memory: M) -> Finished? {
        guard let item = items[id] else { return nil }
        drop(id)
        let rest = item.total - item.done
        let crc = rest == 0 ? item.crc
            : memory.read(at: item.location.offset + item.done, count: rest) { CRC32C.checksum($0, seed: item.crc) }
        return Finished(id: id, created: item.created, digest: UInt64(crc))
    }

    private func oldest() -> ObjectID? {
        var i = head
        while i < order.count { if items[order[i]] != nil { return order[i] }; i += 1 }
        return nil
    }

    private mutating func drop(_ id: ObjectID) {
        items[id] = nil
        while head < order.count, items[order[head]] == nil { head += 1 }
        if head == order.count {
            order.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 1024, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
