import CPlenumShim
import PlenumCluster
import PlenumMemory
import PlenumStore
import PlenumWire

/// Decoded client requests into the core, core actions out (SPEC §9.4, §10.6).
extension StoreDaemon {
    /// One request frame, from the socket or the client's request ring.
    func handle(frame: [UInt8], from c: Connection) {
        do throws(WireError) {
            let decoded = try Wire.decode(frame)
            if decoded.requestId == 0, decoded.request != .wake {
                // 0 is reserved: notifications, and the daemon's own internal requests.
                throw WireError.badValue("request id 0 is reserved; number requests from 1")
            }
            let now = monotonicNanos()
            trace.record(.clientIn, kind: HopTraceLog.frameKind(frame), key: decoded.requestId, client: c.id)
            switch decoded {
            case (let rid, .core(.contains(let id))):
                // The commonest lookup, answered without the core's action
                // list when it can be (ClusterCore.containsAtOnce).
                metrics.begin(client: c.id, rid: rid, op: StoreMetrics.op(StoreRequest.contains(id)), now: now, peerWork: peerWork)
                if let known = core.containsAtOnce(id, for: c.id) {
                    reply(to: c, rid, .contains(known))
                } else {
                    apply(.local(.request(c.id, requestId: rid, .contains(id))), now: now)
                }
                metrics.settle(peerWork: peerWork)
            case (let rid, .core(let request)):
                if !c.mayWrite, Self.changesTheStore(request) { return refuseReadOnly(c, rid) }
                if case .list = request { settleDigests() }
                metrics.begin(client: c.id, rid: rid, op: StoreMetrics.op(request), now: now, peerWork: peerWork)
                apply(.local(.request(c.id, requestId: rid, request)), now: now)
                metrics.settle(peerWork: peerWork)
            case (let rid, .createAndSeal(let objects)):
                guard c.mayWrite else { return refuseReadOnly(c, rid) }
                let token = nextBatch
                nextBatch += 1
                batches[token] = (c.id, rid, objects)
                metrics.begin(client: c.id, rid: rid, op: StoreMetrics.createAndSeal, now: now, peerWork: peerWork)
                apply(.reserveBatch(token: token, ids: objects.map(\.id)), now: now)
                metrics.settle(peerWork: peerWork)
            case (let rid, .openRings):
                openRings(for: c, requestId: rid)
            case (_, .wake):
                lastRingActivity = now
            case (let rid, .cluster(let request)):
                if case .createOn = request, !c.mayWrite { return refuseReadOnly(c, rid) }
                metrics.begin(client: c.id, rid: rid, op: StoreMetrics.op(request), now: now, peerWork: peerWork)
                apply(.cluster(c.id, requestId: rid, request), now: now)
                metrics.settle(peerWork: peerWork)
            case (let rid, .regions):
                sendRegions(to: c, requestId: rid)
            case (let rid, .hopTrace(let on)):
                let (events, dropped) = trace.take(andTurn: on)
                sendSocket(c, Wire.encodeHopTraceReply(events[...], dropped: dropped, requestId: rid))
            case (let rid, .clusterStatus):
                sendSocket(c, Wire.encodeClusterStatus(statusJSON(), requestId: rid))
            case (let rid, .metrics):
                sendSocket(c, Wire.encodeMetrics(metricsText(), requestId: rid))
            case (let rid, .writeAccess):
                grantWriteAccess(to: c, requestId: rid)
            case (let rid, .releaseQuietly(let ids)):
                // As `release`, once per id, with every reply to it dropped:
                // a failure (no reference) is only logged at debug level.
                for id in ids {
                    metrics.begin(client: c.id, rid: rid, op: StoreMetrics.op(StoreRequest.release(id)), now: now, peerWork: peerWork)
                    let actions = core.handle(.local(.request(c.id, requestId: rid, .release(id))), now: now)
                    for case .local(.reply(c.id, rid, let r)) in actions { metrics.end(client: c.id, rid: rid, r, now: monotonicNanos(), peerWork: peerWork) }
                    metrics.settle(peerWork: peerWork)
                    dispatch(actions.filter { a in
                        guard case .local(.reply(c.id, rid, let r)) = a else { return true }
                        if case .error(let e) = r { logger.debug("quiet release of \(id) by client \(c.id): \(e)") }
                        return false
                    })
                }
            case (let rid, .verify(let ids)):
                var budget = Self.maxVerifyBytes
                let results = ids.map { id -> StoreError? in
                    let size = core.store.location(id).map { $0.dataSize + $0.metadataSize } ?? core.heldRemote(c.id, id).map { $0.0.dataSize + $0.0.metadataSize } ?? 0
                    guard size <= budget else { return .tooLarge(requested: size, capacity: budget) }
                    budget -= size
                    return verify(id, for: c.id)
                }
                sendSocket(c, Wire.encodeVerified(results, requestId: rid))
            }
        } catch {
            let rid = frame.count >= 16 ? frame[8..<16].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) } : 0
            let code: ErrorCode = { if case .unknownType = error { return .unknownType } else { return .malformedFrame } }()
            enqueue(c, Wire.error(code, error.description, requestId: rid))
        }
    }

    /// Create-and-seal (SPEC §9.4) once the ids are reserved at their homes:
    /// create here, write the bytes in place, publish them (fence; flush;
    /// fence), seal with their digest.
    func finishBatch(_ token: UInt64, _ reservations: [StoreError?]) {
        guard let b = batches.removeValue(forKey: token) else { return }
        var results: [StoreError?] = []
        for (o, reserved) in zip(b.objects, reservations) {
            if let e = reserved { results.append(e); continue }
            results.append(createAndSeal(o, client: b.client))
        }
        // Through the core: the reply waits until the homes acknowledged.
        dispatch(core.deferredReply(b.client, requestId: b.requestId, .createdAndSealed(results)))
    }

    func createAndSeal(_ o: Wire.InlineObject, client: UInt64) -> StoreError? {
        let memory = region.memory()
        let now = monotonicNanos()
        let (created, actions) = core.createLocal(client, o.id, dataSize: o.data.count, metadataSize: o.metadata.count, now: now)
        dispatch(actions)
        guard case .created(let l)? = created else {
            if case .error(let e)? = created { return e }
            return .unknownClient(client)
        }
        let total = o.data.count + o.metadata.count
        memory.write(at: l.offset, count: total) { b in
            o.data.withUnsafeBytes { if $0.count > 0 { UnsafeMutableRawBufferPointer(rebasing: b[0..<$0.count]).copyMemory(from: $0) } }
            o.metadata.withUnsafeBytes { if $0.count > 0 { UnsafeMutableRawBufferPointer(rebasing: b[o.data.count...]).copyMemory(from: $0) } }
        }
        ObjectMemory.writeBack(memory, l)
        let digest = ObjectMemory.digest(memory, l)
        let (sealed, more) = core.sealLocal(client, o.id, digest: digest, now: now)
        dispatch(more)
        if case .error(let e)? = sealed { return e }
        metrics.created(bytes: total)
        return nil
    }

    /// The core handles `event`; its actions are carried out.
    func apply(_ event: ClusterEvent, now: UInt64) {
        var actions = spareActions.takeForReuse()
        core.handle(event, now: now, into: &actions)
        dispatch(actions)
        spareActions = actions
    }

    /// A reply to request `rid` of client c: timed, then sent (by its reply
    /// ring when it has one, in Plasma's format to a Plasma client).
    func reply(to c: Connection, _ rid: UInt64, _ response: StoreResponse) {
        metrics.end(client: c.id, rid: rid, response, now: monotonicNanos(), peerWork: peerWork)
        if let s = c.plasma { plasmaReply(c, s, requestId: rid, response) } else if let (kind, byte) = Wire.small(response),
                                                                                     postSmall(kind, byte, requestId: rid, to: c) {
            trace.record(.clientOut, kind: kind.rawValue, key: rid, client: c.id)
        } else {
            let frame = Wire.encode(response, requestId: rid)
            enqueue(c, frame)
            trace.record(.clientOut, kind: HopTraceLog.frameKind(frame), key: rid, client: c.id)
        }
    }

    func dispatch(_ actions: [ClusterAction]) {
        // The index first: nothing these actions announce may be missing
        // from it (SPEC §10.4 "Directory index").
        if index != nil {
            let m = region.memory()
            for (id, a) in core.takeIndexChanges() { index!.update(id, a, in: m) }
        }
        // And the view its clients peek with (SPEC §10.4 "Client peeks").
        if clusterView != nil, clusterView!.written != core.peersChanges { publishView() }
        for a in actions {
            switch a {
            case .local(.reply(let client, let rid, let response)):
                guard let c = connections[client] else {
                    metrics.end(client: client, rid: rid, response, now: monotonicNanos(), peerWork: peerWork)
                    break
                }
                reply(to: c, rid, response)
            case .local(.notify(let client, let n)):
                guard let c = connections[client] else { break }
                if let s = c.plasma { plasmaNotify(s, n) } else { enqueue(c, Wire.encode(n)) }
            case .local(.removed):
                break
            case .local(.evicted(let id, let l)):
                if options.spillLimit != nil { spill(id, l) }
            case .send(let node, let corr, let m):
                peers?.send(m, to: node, correlation: corr)
            case .checkDigest(let token, let handle, let l, let digest):
                apply(.digestChecked(token: token, ok: checkDigest(handle, l, digest)), now: monotonicNanos())
            case .invalidate(let l):
                if l.region == 0 { ObjectMemory.drop(region.memory(), l) } else if let (_, r) = peers?.region(handle: l.region), l.end <= r.size {
                    ObjectMemory.drop(r.memory(), l)   // a peer's range a local client wrote (§10.8)
                }
            case .batchReserved(let token, let r):
                finishBatch(token, r)
            }
        }
    }

    /// SPEC §10.8: the first read of a peer's object on this node drops
    /// any stale lines of its range, then checks its digest.
    func checkDigest(_ handle: Int, _ l: ObjectLocation, _ digest: UInt64) -> Bool {
        guard let (node, r) = peers?.region(handle: handle), l.end <= r.size else { return false }
        let ok = ObjectMemory.verify(r.memory(), l, digest: digest)
        if !ok { logger.warning("digest mismatch: refused", metadata: ["node": "\(node)", "offset": "\(l.offset)"]) }
        return ok
    }
}
