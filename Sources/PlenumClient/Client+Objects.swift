#if canImport(Glibc)
import Glibc
#endif
import PlenumMemory
import PlenumStore
import PlenumWire

/// The Plasma-style object API of the client (SPEC §9.2, §9.4, §9.7):
/// create, write in place, seal; get zero-copy, release; and the rest.
extension PlenumClient {
    /// Creates an object and returns its writable location; write with
    /// `write(_:into:)`, then `seal`.
    public func create(_ id: ObjectID, dataSize: Int, metadataSize: Int = 0) throws(ClientError) -> ObjectLocation {
        guard access == .readWrite else { throw .readOnly }
        guard case .created(let l) = try call(.create(id, dataSize: dataSize, metadataSize: metadataSize)) else { throw .unexpected("create") }
        _ = try memory(for: l)
        return l
    }

    /// Writes the bytes of a created object in place (zero-copy into the
    /// region it lives in: this node's, or a peer's through the link).
    public func write(_ location: ObjectLocation, data: (UnsafeMutableRawBufferPointer) -> Void, metadata: (UnsafeMutableRawBufferPointer) -> Void = { _ in }) {
        guard let memory = try? memory(for: location) else { return }
        memory.write(at: location.offset, count: location.dataSize) { data($0) }
        memory.write(at: location.metadataOffset, count: location.metadataSize) { metadata($0) }
    }

    /// Seals: flushes the object's range (invariant 4), computes its digest,
    /// and makes it immutable and visible.
    public func seal(_ id: ObjectID, _ location: ObjectLocation) throws(ClientError) {
        let memory = try memory(for: location)
        ObjectMemory.writeBack(memory, location)
        let digest = ObjectMemory.digest(memory, location)
        guard case .sealed = try call(.seal(id, digest: digest)) else { throw .unexpected("seal") }
    }

    /// create + write + seal.
    public func put(_ id: ObjectID, data: [UInt8], metadata: [UInt8] = [], onNode node: UInt32? = nil) throws(ClientError) {
        let l = node == nil ? try create(id, dataSize: data.count, metadataSize: metadata.count)
                            : try create(id, dataSize: data.count, metadataSize: metadata.count, onNode: node)
        write(l, data: { b in data.withUnsafeBytes { if $0.count > 0 { b.copyMemory(from: $0) } } },
              metadata: { b in metadata.withUnsafeBytes { if $0.count > 0 { b.copyMemory(from: $0) } } })
        try seal(id, l)
    }

    /// Create-and-seal of small objects in one round trip: the bytes travel
    /// in the request and the store writes them in place. Per object: nil,
    /// or why it failed.
    public func createAndSeal(_ objects: [Wire.InlineObject]) throws(ClientError) -> [StoreError?] {
        guard case .createdAndSealed(let es) = try exchange({ Wire.encodeCreateAndSeal(objects, requestId: $0) }),
              es.count == objects.count else { throw .unexpected("create-and-seal") }
        return es
    }

    /// Marks objects as recently used (LRU).
    public func refresh(_ ids: [ObjectID]) throws(ClientError) {
        guard case .refreshed = try call(.refresh(ids)) else { throw .unexpected("refresh") }
    }

    /// Aborts an unsealed object. Pass its location to write back what was
    /// written first (SPEC §10.8): in a peer's memory, a dirty line left in
    /// this node's cache could later land over that memory's next object.
    public func abort(_ id: ObjectID, _ location: ObjectLocation? = nil) throws(ClientError) {
        if let l = location, let m = try? memory(for: l) { ObjectMemory.writeBack(m, l) }
        guard case .aborted = try call(.abort(id)) else { throw .unexpected("abort") }
    }

    /// For each id, a zero-copy buffer or nil (not sealed before the timeout).
    /// `timeoutMs`: 0 polls, −1 waits forever.
    public func get(_ ids: [ObjectID], timeoutMs: Int64) throws(ClientError) -> [ObjectBuffer?] {
        guard case .objects(let ls) = try call(.get(ids, timeoutMs: timeoutMs)), ls.count == ids.count else { throw .unexpected("get") }
        var out: [ObjectBuffer?] = []
        for (id, l) in zip(ids, ls) {
            guard let l else { out.append(nil); continue }
            out.append(ObjectBuffer(id: id, location: l, memory: try memory(for: l)))
        }
        return out
    }

    /// Releases a buffer got from this client. Nothing answers it (SPEC
    /// §9.2 `releaseQuietly`): it costs one post, and the store applies it
    /// before this client's next request. A second release of the same
    /// buffer throws `released` here.
    public func release(_ buffer: ObjectBuffer) throws(ClientError) {
        try release([buffer])
    }

    /// Releases several buffers in one quiet request.
    public func release(_ buffers: [ObjectBuffer]) throws(ClientError) {
        if let b = buffers.first(where: \.isReleased) { throw .released(b.id) }
        var start = 0
        while start < buffers.count {
            let chunk = buffers[start..<min(buffers.count, start + Frame.maxIds)]
            try sendOneWay { Wire.encodeReleaseQuietly(chunk.map(\.id), requestId: $0) }
            for b in chunk { b.isReleased = true }
            start += chunk.count
        }
    }

    /// Releases one reference to `id` and waits for the store's answer
    /// (`noReference` when this client holds none).
    public func release(_ id: ObjectID) throws(ClientError) {
        guard case .released = try call(.release(id)) else { throw .unexpected("release") }
    }

    /// Checks sealed objects against the digests taken when they were
    /// sealed (SPEC §9.7): per id nil, or why not (`digestMismatch` when the
    /// bytes changed). Objects in a peer's memory must be held (get first).
    public func verify(_ ids: [ObjectID]) throws(ClientError) -> [StoreError?] {
        guard ids.count <= Frame.maxIds else { throw .remote(RemoteError(code: ErrorCode.tooManyIds.rawValue, message: "\(ids.count) ids in one request; at most \(Frame.maxIds)")) }
        return try socketCall({ Wire.encodeVerify(ids, requestId: $0) }) { incoming, rid -> [StoreError?]? in
            if case .verified(rid, let results) = incoming { return results } else { return nil }
        }
    }

    /// Whether `id` is sealed: read from its home's directory index by this
    /// client itself when it can (SPEC §10.4 "Client peeks"), else asked.
    public func contains(_ id: ObjectID) throws(ClientError) -> Bool {
        if let b = peekContains(id) { return b }
        guard case .contains(let b) = try call(.contains(id)) else { throw .unexpected("contains") }
        return b
    }

    /// Per id: nil on success, else why not.
    public func delete(_ ids: [ObjectID]) throws(ClientError) -> [StoreError?] {
        guard case .deleted(let r) = try call(.delete(ids)) else { throw .unexpected("delete") }
        return r
    }

    public func list() throws(ClientError) -> [ObjectInfo] {
        guard case .list(let rows) = try call(.list) else { throw .unexpected("list") }
        return rows
    }

    public func evict(bytes: Int) throws(ClientError) -> Int {
        guard case .evicted(let n) = try call(.evict(bytes: bytes)) else { throw .unexpected("evict") }
        return n
    }

    public func subscribe() throws(ClientError) {
        guard case .subscribed = try call(.subscribe) else { throw .unexpected("subscribe") }
    }

    public func stats() throws(ClientError) -> StoreStats {
        guard case .stats(let s) = try call(.stats) else { throw .unexpected("stats") }
        return s
    }

    /// Waits for the next seal/delete notification (after `subscribe`).
    public func nextNotification() throws(ClientError) -> StoreNotification {
        if !notifications.isEmpty { return notifications.removeFirst() }
        while true {
            let incoming = try next()
            if case .notification(let n) = incoming { return n }
            take(incoming, awaiting: 0)   // a reply to a request in flight is kept for its wait
        }
    }
}
