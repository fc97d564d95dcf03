import CURing
import PlenumCluster
import PlenumMemory
import PlenumStore

/// A Plasma client's seal on a store alone (SPEC §11.3 "Seal"): no other
/// host maps this memory, so an object of 64 KiB or more is not written
/// back, and its digest is taken off the answer path — by the loop when it
/// would otherwise sleep, a chunk at a time, or at once when a verify or a
/// list needs it.
///
/// ```
///  SealRequest ─▶ seal (digest pending) ─▶ SealReply
///                 lateDigests.add ─▶ … loop idle: 64 KiB of CRC32C, look at the
///                                    completion queue, again … ─▶ recordDigest
///  verify(id) / list ─▶ settleDigest(id) / settleDigests() first
/// ```
extension StoreDaemon {
    /// CRC32C per step of the idle loop: about 5 µs, the longest a request
    /// that arrives meanwhile waits for it.
    static let lateDigestChunk = 64 << 10

    /// Whether a Plasma seal of `l` is on a store alone: the object in its
    /// own region, which no other host maps.
    func alone(_ l: ObjectLocation) -> Bool { peers == nil && l.region == 0 }

    /// Whether such a seal skips the write-back and leaves the digest for
    /// later: an object of 64 KiB or more, while fewer than 4,096 wait
    /// (`LateDigests.admits`). A smaller one is written back and digested
    /// at once, as on a cluster: it costs a few µs at most, and its readers
    /// then read it faster (1 kB and 10 kB objects at about 2.8× the
    /// bandwidth, `Scripts/bench-vs-plasma`).
    func mayDigestLate(_ l: ObjectLocation) -> Bool { lateDigests.admits(l) }

    /// Records an object sealed with its digest pending.
    func digestLater(_ id: ObjectID, _ l: ObjectLocation) {
        guard let created = core.store.createdNanos(id), core.store.isSealed(id) else { return }
        lateDigests.add(id, location: l, created: created)
    }

    /// The digest of `id` now, if it is pending (before a verify reads it).
    func settleDigest(_ id: ObjectID) {
        guard let f = lateDigests.take(id, region.memory()) else { return }
        _ = core.recordDigest(f.id, f.digest, ifCreatedAt: f.created)
    }

    /// Every pending digest now (before a list reports them).
    func settleDigests() {
        while !lateDigests.isEmpty {
            if let f = lateDigests.advance(region.memory(), bytes: Int.max, isCurrent: isCurrent) {
                _ = core.recordDigest(f.id, f.digest, ifCreatedAt: f.created)
            }
        }
    }

    /// Digests while nothing else is to be done: called just before the
    /// loop blocks, it stops as soon as a completion is queued (a request,
    /// a bell, a timer), so the loop serves it first.
    func digestWhileIdle() {
        guard !lateDigests.isEmpty else { return }
        io_uring_submit(&ring)
        let memory = region.memory()
        while !lateDigests.isEmpty, plenum_uring_work_pending(&ring) == 0 {
            if let f = lateDigests.advance(memory, bytes: Self.lateDigestChunk, isCurrent: isCurrent) {
                _ = core.recordDigest(f.id, f.digest, ifCreatedAt: f.created)
            }
        }
    }

    private func isCurrent(_ id: ObjectID, _ created: UInt64) -> Bool {
        core.store.createdNanos(id) == created && core.store.isSealed(id)
    }
}
