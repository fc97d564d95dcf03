#if canImport(Glibc)
import Glibc
#endif
import CPlenumShim
import CURing
import PlenumCluster
import PlenumMemory
import PlenumPlasma
import PlenumStore
import PlenumWire

/// Plasma 11's client protocol on its own socket (SPEC §11), served by the
/// same core as Plenum's clients: a Plasma client is a core client whose
/// frames are translated on the way in and its replies on the way out.
///
/// ```
///   accept (writers only) ─▶ poll POLLIN ─▶ recvmsg (bytes + SCM_RIGHTS) ─▶ frames ─▶ core request (PlasmaSession.track)
///   core reply (rid) ─▶ PlasmaSession.pending[rid] ─▶ Plasma reply ─▶ [frame] then [1 byte + store fd] per new descriptor
///   core notify ─▶ [i64 length][PlasmaNotification] on the client's subscriber socket
/// ```
extension StoreDaemon {
    // MARK: connections

    func armPlasmaAccept() {
        let s = sqe()
        io_uring_prep_accept(s, plasmaListenFD, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
        io_uring_sqe_set_data64(s, Self.data(.plasmaAccept))
    }

    /// Plasma clients pass descriptors (subscribe), which a plain recv would
    /// drop: the loop polls for input and reads with recvmsg.
    func armPlasmaRead(_ c: Connection) {
        guard !c.recvArmed, !c.closing else { return }
        c.recvArmed = true
        let s = sqe()
        io_uring_prep_poll_add(s, c.fd, UInt32(POLLIN))
        io_uring_sqe_set_data64(s, Self.data(.plasmaRead, c.id))
    }

    func plasmaAccepted(fd: Int32) {
        // A Plasma client maps the region read-write (it would abort on a
        // read-only descriptor), so only writers may connect (SPEC §11.1).
        guard let uid = Self.peerUID(fd), uid == geteuid() || options.writerUIDs.contains(uid) else {
            warnings.warning(logger, key: "plasma-reader", "Plasma client refused: its uid may not write to this store (Plasma clients map objects read-write; start the store with --writer-uid UID)", now: monotonicNanos())
            close(fd)
            return
        }
        let id = nextClient
        nextClient += 1
        let c = Connection(id: id, fd: fd)
        c.mayWrite = true
        c.writable = true
        c.plasma = PlasmaSession()
        connections[id] = c
        apply(.local(.connected(id)), now: monotonicNanos())
        armPlasmaRead(c)
        logger.info("Plasma client connected", metadata: ["client": "\(id)"])
    }

    func plasmaReadable(_ c: Connection, result: Int32) {
        c.recvArmed = false
        guard let session = c.plasma else { return }
        if result < 0 { return drop(c, why: "poll errno \(-result)") }
        var fds = [Int32](repeating: -1, count: Int(PLENUM_MAX_FDS))
        while true {
            var n: Int32 = 0
            let got = plenum_recv_with_fds(c.fd, c.buffer, 65536, Int32(MSG_DONTWAIT), &fds, PLENUM_MAX_FDS, &n)
            session.receivedFDs += fds[0..<Int(n)]
            if got > 0 {
                c.input.append(contentsOf: UnsafeRawBufferPointer(start: c.buffer, count: got).bindMemory(to: UInt8.self))
                if got < 65536 { break }
                continue
            }
            if got == 0 { drop(c, why: "closed"); return }
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { break }
            drop(c, why: "recvmsg errno \(errno)")
            return
        }
        if session.receivedFDs.count > 16 {
            for f in session.receivedFDs { close(f) }
            session.receivedFDs = []
            drop(c, why: "sent more descriptors than subscriptions", misbehaving: true)
            return
        }
        processPlasma(c, session)
        armPlasmaRead(c)
    }

    /// Parses every whole Plasma frame in the input (SPEC §11.1).
    func processPlasma(_ c: Connection, _ session: PlasmaSession) {
        lastSocketRequest = monotonicNanos()
        var start = 0
        while !c.closing {
            if session.awaitingSubscriberFD {
                // send_fd's single byte, with the subscriber's socket attached.
                guard start < c.input.count else { break }
                start += 1
                session.awaitingSubscriberFD = false
                if session.receivedFDs.isEmpty {
                    warnings.warning(logger, key: "plasma-subscribe-\(c.id)", "Plasma client \(c.id) subscribed without passing a socket: no notifications", now: monotonicNanos())
                } else {
                    attachSubscriber(session.receivedFDs.removeFirst(), to: c, session)
                }
                continue
            }
            let header: (type: Int64, length: Int)?
            do { header = try PlasmaCodec.header(c.input, from: start) } catch {
                plasmaProtocolError(c, "\(error)")
                break
            }
            guard let header, c.input.count - start - PlasmaCodec.headerBytes >= header.length else { break }
            let bodyStart = start + PlasmaCodec.headerBytes
            let body = Array(c.input[bodyStart..<(bodyStart + header.length)])
            start = bodyStart + header.length
            do {
                handlePlasma(try PlasmaCodec.decodeRequest(type: header.type, body: body), from: c, session)
            } catch {
                plasmaProtocolError(c, "\(error) (message type \(header.type))")
            }
        }
        if start > 0 { c.input.removeFirst(min(start, c.input.count)) }
    }

    /// Plasma has no error reply for a frame it cannot read: its store logs
    /// and drops the client. So does this one (and keeps serving the rest).
    func plasmaProtocolError(_ c: Connection, _ why: String) {
        warnings.warning(logger, key: "plasma-frame-\(c.id)", "Plasma client \(c.id) sent a bad frame: \(why); disconnecting it", now: monotonicNanos())
        drop(c, why: why, misbehaving: true)
    }

    func attachSubscriber(_ fd: Int32, to c: Connection, _ session: PlasmaSession) {
        if let old = session.subscriber, let o = connections[old] { drop(o, why: "replaced by a new subscription") }
        let id = nextClient
        nextClient += 1
        let sub = Connection(id: id, fd: fd)
        sub.notifyOnly = true
        sub.owner = c.id
        connections[id] = sub
        session.subscriber = id
        apply(.local(.request(c.id, requestId: session.track(.silent), .subscribe)), now: monotonicNanos())
        // As Plasma's store does: a new subscriber first hears of every
        // object already sealed here.
        for o in core.store.sealedObjects.sorted(by: { $0.0 < $1.0 }) { plasmaNotify(session, .sealed(o.0, o.1)) }
    }

    // MARK: requests

    func handlePlasma(_ q: PlasmaRequest, from c: Connection, _ s: PlasmaSession) {
        let now = monotonicNanos()
        func ask(_ p: PlasmaSession.Pending, _ r: StoreRequest) {
            let rid = s.track(p)
            metrics.begin(client: c.id, rid: rid, op: StoreMetrics.op(r), now: now, peerWork: peerWork)
            apply(.local(.request(c.id, requestId: rid, r)), now: now)
            metrics.settle(peerWork: peerWork)
        }
        // What the core answered on the spot (ClusterCore.getAtOnce,
        // releaseAtOnce): tracked, counted and replied as `ask` would.
        func answered(_ p: PlasmaSession.Pending, _ r: StoreRequest, _ response: StoreResponse) {
            let rid = s.track(p)
            metrics.begin(client: c.id, rid: rid, op: StoreMetrics.op(r), now: now, peerWork: peerWork)
            reply(to: c, rid, response)
            metrics.settle(peerWork: peerWork)
        }
        switch q {
        case .connect:
            sendSocket(c, PlasmaCodec.encode(.connect(memoryCapacity: Int64(options.plasmaCapacity ?? options.memory))))
        case .create(let id, let evictIfFull, let d, let m, let device):
            guard device == 0 else {
                warnings.warning(logger, key: "plasma-device", "Plasma client \(c.id) asked for an object on device \(device): only host memory (device 0) is served", now: now)
                return sendSocket(c, PlasmaCodec.encode(.create(id, .missing, .outOfMemory, storeFD: -1, mmapSize: 0)))
            }
            guard d >= 0, m >= 0, d <= Int64(Int.max) - m else {
                return sendSocket(c, PlasmaCodec.encode(.create(id, .missing, .outOfMemory, storeFD: -1, mmapSize: 0)))
            }
            // On a cluster this node first, else the peer with the most room;
            // `evict_if_full = false`: this node's free memory only (§11.9).
            guard evictIfFull else {
                let rid = s.track(.create(id))
                metrics.begin(client: c.id, rid: rid, op: StoreMetrics.op(.create(id, dataSize: Int(d), metadataSize: Int(m))), now: now, peerWork: peerWork)
                dispatch(core.createWithoutEviction(c.id, requestId: rid, id, dataSize: Int(d), metadataSize: Int(m), now: now))
                metrics.settle(peerWork: peerWork)
                return
            }
            ask(.create(id), .create(id, dataSize: Int(d), metadataSize: Int(m)))
        case .createAndSeal(let objects, let batch):
            let token = nextBatch
            nextBatch += 1
            let rid = s.track(.createAndSeal(batch: batch))
            batches[token] = (c.id, rid, objects.map { Wire.InlineObject(id: $0.id, data: $0.data, metadata: $0.metadata) })
            metrics.begin(client: c.id, rid: rid, op: StoreMetrics.createAndSeal, now: now, peerWork: peerWork)
            apply(.reserveBatch(token: token, ids: objects.map(\.id)), now: now)
            metrics.settle(peerWork: peerWork)
        case .abort(let id):
            s.created[id] = nil
            ask(.abort(id), .abort(id))
        case .seal(let id):
            // Plasma's client neither writes back nor digests for this
            // memory model: the store does both before it seals, or, alone
            // (no other host maps its memory), digests later (§11.3).
            guard let l = s.created.removeValue(forKey: id) else {
                return sendSocket(c, PlasmaCodec.encode(.seal(id, .objectNonexistent)))
            }
            if alone(l), mayDigestLate(l) {
                ask(.seal(id), .seal(id, digest: 0))
                return digestLater(id, l)
            }
            guard let digest = writeBackAndDigest(l) else { return sendSocket(c, PlasmaCodec.encode(.seal(id, .objectNonexistent))) }
            ask(.seal(id), .seal(id, digest: digest))
        case .get(let ids, let timeout):
            restoreSpilled(ids, for: c.id)
            let limit = core.store.config.maxIdsPerRequest
            guard ids.count > limit else {
                let r = StoreRequest.get(ids, timeoutMs: timeout < 0 ? -1 : timeout)
                if let ls = core.getAtOnce(ids, for: c.id) { return answered(.get(ids), r, .objects(ls)) }
                return ask(.get(ids), r)
            }
            // Plasma has no limit: parts of at most `limit` ids, each waiting
            // the same timeout, answered together once all are.
            let token = s.nextBigGet
            s.nextBigGet += 1
            let offsets = Array(stride(from: 0, to: ids.count, by: limit))
            s.bigGets[token] = PlasmaSession.BigGet(ids: ids, locations: Array(repeating: nil, count: ids.count), partsLeft: offsets.count)
            for o in offsets {
                let part = Array(ids[o..<min(o + limit, ids.count)])
                ask(.getPart(token: token, offset: o), .get(part, timeoutMs: timeout < 0 ? -1 : timeout))
            }
        case .release(let id):
            if s.pinning.contains(id) { s.releasedWhilePinning.insert(id); return }
            for _ in 0..<(s.held.removeValue(forKey: id) ?? 0) {
                if core.releaseAtOnce(id, for: c.id) { answered(.silent, .release(id), .released) } else { ask(.silent, .release(id)) }
            }
        case .delete(let ids):
            for id in ids { spillDrop(id) }
            ask(.delete(ids), .delete(ids))
        case .contains(let id):
            if spilled[id] != nil { return sendSocket(c, PlasmaCodec.encode(.contains(id, true))) }
            // What the core would answer when it needs no message
            // (ClusterCore.containsAtOnce, as for a Plenum client), without
            // a pending entry; counted alike.
            metrics.begin(client: c.id, rid: 0, op: StoreMetrics.op(StoreRequest.contains(id)), now: now, peerWork: peerWork)
            if let known = core.containsAtOnce(id, for: c.id) {
                metrics.end(client: c.id, rid: 0, .contains(known), now: now, peerWork: peerWork)
                return sendSocket(c, PlasmaCodec.encode(.contains(id, known)))
            }
            ask(.contains(id), .contains(id))
        case .list:
            settleDigests()
            ask(.list, .list)
        case .evict(let bytes):
            ask(.evict, .evict(bytes: Int(clamping: bytes)))
        case .subscribe:
            // The core subscription starts with the socket (below), so no
            // seal falls between the two.
            s.awaitingSubscriberFD = true
        case .setOptions(_, let quota):
            // Per-client quotas do not fit this store's one LRU (SPEC §11.9):
            // a quota is refused as Plasma refuses one it cannot grant
            // (OutOfMemory; pyarrow raises PlasmaStoreFull), never accepted
            // and ignored. No quota (≤ 0) is nothing to refuse.
            guard quota <= 0 else {
                warnings.warning(logger, key: "plasma-quota", "Plasma client \(c.id) asked for a memory quota of \(quota) bytes: refused, this store keeps no per-client quotas", now: now)
                return sendSocket(c, PlasmaCodec.encode(.setOptions(.outOfMemory)))
            }
            sendSocket(c, PlasmaCodec.encode(.setOptions(.ok)))
        case .debugString:
            let st = core.store.stats
            let text = "plenum store (Plasma protocol)\ncapacity: \(st.capacity)\nused: \(st.used)\nobjects: \(st.objects)\nsealed: \(st.sealed)\nclients: \(st.clients)\nevictions: \(st.evictions)\nspilled objects: \(spilled.count)\n"
            sendSocket(c, PlasmaCodec.encode(.debugString(Array(text.utf8))))
        case .refreshLRU(let ids):
            ask(.refresh, .refresh(ids))
        case .disconnect:
            drop(c, why: "disconnected")
        case .unsupported(let type):
            plasmaProtocolError(c, "message type \(type) is not a request this store serves")
        }
    }

    /// Writes back an unsealed object's lines and returns its digest (the
    /// writer side of SPEC §10.8, done for a client that does not).
    func writeBackAndDigest(_ l: ObjectLocation) -> UInt64? {
        if l.region == 0 {
            ObjectMemory.writeBack(region.memory(), l)
            return ObjectMemory.digest(region.memory(), l)
        }
        guard let (_, r) = peers?.region(handle: l.region), l.end <= r.size else { return nil }
        ObjectMemory.writeBack(r.memory(), l)
        return ObjectMemory.digest(r.memory(), l)
    }

    // MARK: replies

    /// A core reply for a Plasma client.
    func plasmaReply(_ c: Connection, _ s: PlasmaSession, requestId rid: UInt64, _ r: StoreResponse) {
        guard let p = s.pending.removeValue(forKey: rid) else { return }
        func send(_ reply: PlasmaReply) { sendSocket(c, PlasmaCodec.encode(reply)) }
        switch (p, r) {
        case (.create(let id), .created(let l)):
            guard let (fd, size) = storeFD(for: l.region) else {
                apply(.local(.request(c.id, requestId: s.track(.silent), .abort(id))), now: monotonicNanos())
                return send(.create(id, .missing, .objectNonexistent, storeFD: -1, mmapSize: 0))
            }
            s.created[id] = l
            send(.create(id, spec(l, storeFD: fd), .ok, storeFD: fd, mmapSize: size))
            sendStoreFD(fd, region: l.region, to: c, s)
        case (.create(let id), .error(let e)):
            send(.create(id, .missing, PlasmaError(e), storeFD: -1, mmapSize: 0))
        case (.seal(let id), let r):
            if case .error(let e) = r { return send(.seal(id, PlasmaError(e))) }
            send(.seal(id, .ok))
            // Plasma's creator keeps its reference until it releases.
            s.pinning.insert(id)
            apply(.local(.request(c.id, requestId: s.track(.pin(id)), .get([id], timeoutMs: 0))), now: monotonicNanos())
        case (.pin(let id), .objects(let l)):
            s.pinning.remove(id)
            if l.first.flatMap({ $0 }) != nil { took(id, c, s) }
            if s.releasedWhilePinning.remove(id) != nil { handlePlasma(.release(id), from: c, s) }
        case (.getPart(let token, let offset), let r):
            guard var big = s.bigGets[token] else { return }
            // A part that failed counts as missing, as a failed get does.
            if case .objects(let ls) = r {
                for (i, l) in ls.enumerated() where offset + i < big.locations.count { big.locations[offset + i] = l }
            }
            big.partsLeft -= 1
            guard big.partsLeft == 0 else { s.bigGets[token] = big; return }
            s.bigGets[token] = nil
            plasmaReply(c, s, requestId: s.track(.get(big.ids)), .objects(big.locations))
        case (.get(let ids), .objects(let locations)):
            var specs: [PlasmaObjectSpec] = [], fds: [Int32] = [], sizes: [Int64] = [], regions: [Int] = []
            for (id, l) in zip(ids, locations) {
                guard let l else { specs.append(.missing); continue }
                guard let (fd, size) = storeFD(for: l.region) else {
                    // The region went away meanwhile: not returned, and the reference the get took goes back.
                    apply(.local(.request(c.id, requestId: s.track(.silent), .release(id))), now: monotonicNanos())
                    specs.append(.missing)
                    continue
                }
                took(id, c, s)
                specs.append(spec(l, storeFD: fd))
                if !fds.contains(fd) { fds.append(fd); sizes.append(size); regions.append(l.region) }
            }
            send(.get(ids, specs, storeFDs: fds, mmapSizes: sizes))
            for (fd, region) in zip(fds, regions) { sendStoreFD(fd, region: region, to: c, s) }
        case (.get(let ids), .error(let e)):
            warnings.warning(logger, key: "plasma-get-\(c.id)", "Plasma get failed: \(e)", now: monotonicNanos())
            send(.get(ids, ids.map { _ in .missing }, storeFDs: [], mmapSizes: []))
        case (.contains(let id), .contains(let has)):
            send(.contains(id, has))
        case (.contains(let id), _):
            send(.contains(id, false))
        case (.delete(let ids), .deleted(let errors)):
            // Plasma's deletion cache (SPEC §11.9): one in use or unsealed
            // here is deleted at its last release; the answer still says why
            // it was not deleted now, as Plasma's does.
            for (id, e) in zip(ids, errors) {
                switch e {
                case .inUse?, .notSealed?: core.deleteAtLastRelease(id)
                default: break
                }
            }
            send(.delete(ids, errors.map { $0.map(PlasmaError.init) ?? .ok }))
        case (.delete(let ids), .error(let e)):
            send(.delete(ids, ids.map { _ in PlasmaError(e) }))
        case (.abort(let id), _):
            send(.abort(id))
        case (.list, .list(let rows)):
            send(.list(rows.map(plasmaInfo)))
        case (.list, _):
            send(.list([]))
        case (.evict, .evicted(let bytes)):
            send(.evict(bytes: UInt64(max(0, bytes))))
        case (.evict, _):
            send(.evict(bytes: 0))
        case (.refresh, _):
            send(.refreshLRU)
        case (.createAndSeal(let batch), .createdAndSealed(let results)):
            send(.createAndSeal(results.compactMap { $0 }.first.map(PlasmaError.init) ?? .ok, batch: batch))
        case (.createAndSeal(let batch), .error(let e)):
            send(.createAndSeal(PlasmaError(e), batch: batch))
        default:
            break
        }
    }

    /// A reference the core granted: kept once per object (Plasma's set).
    func took(_ id: ObjectID, _ c: Connection, _ s: PlasmaSession) {
        if s.held[id] == nil { s.held[id] = 1; return }
        apply(.local(.request(c.id, requestId: s.track(.silent), .release(id))), now: monotonicNanos())
    }

    /// Plasma's client finds an object's mapping by `segment_index`, which
    /// its store fills with the `store_fd` (SPEC §11.3).
    func spec(_ l: ObjectLocation, storeFD: Int32) -> PlasmaObjectSpec {
        PlasmaObjectSpec(segmentIndex: storeFD, dataOffset: UInt64(l.offset), dataSize: Int64(l.dataSize),
                         metadataOffset: UInt64(l.metadataOffset), metadataSize: Int64(l.metadataSize))
    }

    /// The `store_fd` and mapping size that name region `handle` (0: this
    /// store's; else a peer's, SPEC §11.3). The client maps `mmap_size − 8`
    /// bytes (Plasma's kMmapRegionsGap), so the size is the region's + 8.
    func storeFD(for handle: Int) -> (Int32, Int64)? {
        if handle == 0 { return (1, Int64(region.size + 8)) }
        guard let (_, r) = peers?.region(handle: handle), handle < Int(Int32.max) - 1 else { return nil }
        return (Int32(handle + 1), Int64(r.size + 8))
    }

    /// Sends a region's descriptor the first time this client needs it: one
    /// byte (0) carrying it, right after the reply that names it.
    func sendStoreFD(_ storeFD: Int32, region handle: Int, to c: Connection, _ s: PlasmaSession) {
        guard !s.sentStoreFDs.contains(storeFD) else { return }
        let fd: Int32
        if handle == 0 { fd = openRegion(O_RDWR) } else {
            guard let (_, r) = peers?.region(handle: handle) else { return }
            fd = open(r.path, O_RDWR | O_CLOEXEC)
        }
        guard fd >= 0 else { return drop(c, why: "could not open a region for a Plasma client (errno \(errno))") }
        s.sentStoreFDs.insert(storeFD)
        sendSocket(c, [0], descriptors: [fd])
    }

    /// A list row as Plasma reports it: wall-clock seconds, −1 construct
    /// duration while unsealed, and the creator's reference counted.
    func plasmaInfo(_ o: ObjectInfo) -> PlasmaObjectInfo {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let age = Int64(clamping: monotonicNanos() &- o.createdNanos) / 1_000_000_000
        return PlasmaObjectInfo(id: o.id, dataSize: Int64(o.location.dataSize), metadataSize: Int64(o.location.metadataSize),
                                refCount: Int32(clamping: o.refCount + (o.state == .created ? 1 : 0)), createTime: Int64(ts.tv_sec) - age,
                                constructDuration: o.constructNanos.map { Int64(clamping: $0 / 1_000_000_000) } ?? -1,
                                digest: o.digest.map { d in (0..<8).map { UInt8(truncatingIfNeeded: d >> (8 * $0)) } } ?? [])
    }

    /// A core notification for a Plasma client: to its subscriber socket.
    func plasmaNotify(_ s: PlasmaSession, _ n: StoreNotification) {
        guard let sid = s.subscriber, let sub = connections[sid] else { return }
        let info: PlasmaObjectInfo
        switch n {
        case .sealed(let id, let l):
            info = PlasmaObjectInfo(id: id, dataSize: Int64(l.dataSize), metadataSize: Int64(l.metadataSize))
        case .deleted(let id):
            info = PlasmaObjectInfo(id: id, dataSize: -1, metadataSize: -1, isDeletion: true)
        }
        sendSocket(sub, PlasmaCodec.notification([info]))
    }
}
