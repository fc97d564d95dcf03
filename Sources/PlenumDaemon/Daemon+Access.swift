#if canImport(Glibc)
import Glibc
#endif
import CPlenumShim
import PlenumMemory
import PlenumStore
import PlenumWire

/// The trust model (SPEC §9.7): who may change the store, who holds a
/// writable mapping, and checking sealed objects against their digests.
///
/// ```
///   client uid ── SO_PEERCRED ──▶ mayWrite = (uid == daemon's) ∨ uid ∈ --writer-uid
///   greeting fd: region O_RDONLY             (every client)
///   writeAccess ─▶ region O_RDWR + writeGranted   (mayWrite only; else readOnly)
///   ring pair   ─▶ a memfd of its own        (no other client maps it)
///   verify(ids) ─▶ digest over the bytes now == digest taken at seal?
/// ```
extension StoreDaemon {
    /// The uid of the process at the other end of a Unix socket.
    static func peerUID(_ fd: Int32) -> uid_t? {
        var uid: UInt32 = 0
        return plenum_peer_uid(fd, &uid) == 0 ? uid_t(uid) : nil
    }

    /// Requests a read-only client may not make.
    static func changesTheStore(_ r: StoreRequest) -> Bool {
        switch r {
        case .create, .seal, .abort, .delete, .evict: return true
        case .get, .release, .contains, .list, .subscribe, .stats, .refresh: return false
        }
    }

    func refuseReadOnly(_ c: Connection, _ rid: UInt64) {
        enqueue(c, Wire.error(.readOnly, "this client may only read: its uid is not among the store's writers (start the store with --writer-uid UID)", requestId: rid))
    }

    /// A writable descriptor of the region, for a client allowed to write.
    func grantWriteAccess(to c: Connection, requestId rid: UInt64) {
        guard c.mayWrite else { return refuseReadOnly(c, rid) }
        let fd = openRegion(O_RDWR)
        guard fd >= 0 else {
            sendSocket(c, Wire.error(.readOnly, "the region cannot be opened for writing (errno \(errno))", requestId: rid))
            return
        }
        c.writable = true
        sendSocket(c, Wire.encodeWriteGranted(requestId: rid), descriptors: [fd])
    }

    /// A fresh descriptor of the region with `mode`, through the locked
    /// descriptor (the path may have been unlinked or replaced meanwhile).
    func openRegion(_ mode: Int32) -> Int32 { open("/proc/self/fd/\(regionLockFD)", mode | O_CLOEXEC) }

    /// Bytes one `verify` request may check: the loop serves every client,
    /// so one request must not hold it for long.
    static let maxVerifyBytes = 256 << 20

    /// Checks a sealed object against the digest taken at seal: one in this
    /// store's memory, or one in a peer's memory the client holds.
    func verify(_ id: ObjectID, for client: UInt64) -> StoreError? {
        if core.store.location(id) != nil {
            settleDigest(id)
            guard core.store.isSealed(id), let l = core.store.location(id), let digest = core.store.digest(id) else { return .notSealed(id) }
            return ObjectMemory.verify(region.memory(), l, digest: digest) ? nil : .digestMismatch(id)
        }
        guard let (l, digest) = core.heldRemote(client, id) else { return peers == nil ? .notFound(id) : .noReference(id) }
        guard let (_, r) = peers?.region(handle: l.region), l.end <= r.size else { return .notFound(id) }
        return ObjectMemory.verify(r.memory(), l, digest: digest) ? nil : .digestMismatch(id)
    }
}
