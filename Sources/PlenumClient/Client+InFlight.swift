import PlenumRing
import PlenumStore
import PlenumWire

/// Many requests in flight from one client (SPEC §9.6 "Order"): `submit`
/// posts without waiting, `wait` takes one reply, whatever order the replies
/// come in (requests that cross nodes complete as their nodes answer).
///
/// ```
///   submit ─▶ inFlight: rid waiting ── reply arrives (any wait, any call) ──▶ rid arrived ── wait(rid) ─▶ response
/// ```
/// A client keeps at most `maxInFlight` requests outstanding by its own
/// choice (the helpers below); the store bounds what it queues per client
/// (SPEC §9.4 "Limits").
extension PlenumClient {
    /// A request in flight.
    public struct Ticket: Hashable, Sendable {
        public let requestId: UInt64
    }

    /// Posts `request` without waiting for its reply (by the request ring
    /// without a doorbell check: `wait` or `flush` does that once for all).
    public func submit(_ request: StoreRequest) throws(ClientError) -> Ticket {
        let lookup: Bool
        if case .contains(let id) = request {
            if let b = peekContains(id) { return answered(.contains(b)) }
            lookup = true
        } else {
            lookup = false
        }
        let t: Ticket
        if let (kind, id) = Wire.oneID(request), let posted = submitInPlace(kind, id) { t = posted } else {
            t = try submitFrame { Wire.encode(request, requestId: $0) }
        }
        // A lookup that follows waits for this one's reply (IndexPeeks).
        if !lookup, let p = indexPeeks { p.unanswered.insert(t.requestId) }
        return t
    }

    /// A ticket whose reply is already here (a lookup this client answered).
    func answered(_ response: StoreResponse) -> Ticket {
        let rid = nextRequest
        nextRequest += 1
        inFlight.expect(rid)
        _ = inFlight.arrive(rid, .success(response))
        return Ticket(requestId: rid)
    }

    /// A one-id request (contains, release, abort) written straight into
    /// the request ring: no frame allocated. nil when it takes the general
    /// path instead (no rings; the ring full or unusable: `post` waits or
    /// falls back to the socket).
    func submitInPlace(_ kind: Frame.Kind, _ id: ObjectID) -> Ticket? {
        guard requests != nil else { return nil }
        let rid = nextRequest
        guard case .posted? = try? requests!.post(kind: RingPieces.last, requestId: 0, length: Frame.oneIDLength, fill: {
            Frame.writeOneID(kind, requestId: rid, id: id, into: $0)
        }) else { return nil }
        nextRequest += 1
        inFlight.expect(rid)
        return Ticket(requestId: rid)
    }

    /// As `submit`, for a cluster request (create on a node, barrier).
    public func submit(_ request: ClusterRequest) throws(ClientError) -> Ticket {
        let t = try submitFrame { Wire.encode(request, requestId: $0) }
        indexPeeks?.unanswered.insert(t.requestId)
        return t
    }

    func submitFrame(_ frame: (UInt64) -> [UInt8]) throws(ClientError) -> Ticket {
        let rid = nextRequest
        nextRequest += 1
        let bytes = frame(rid)
        if try !post(bytes, doorbell: false) { try send(bytes) }
        inFlight.expect(rid)
        return Ticket(requestId: rid)
    }

    /// Makes sure a sleeping store sees what was submitted (SPEC §9.6
    /// doorbell); `wait` does it first.
    public func flush() throws(ClientError) { try ringDoorbell() }

    /// The reply to `ticket`; replies to other requests in flight that come
    /// first are kept for their own `wait`.
    public func wait(_ ticket: Ticket) throws(ClientError) -> StoreResponse {
        let rid = ticket.requestId
        try ringDoorbell()
        while true {
            if let result = inFlight.take(rid) {
                switch result {
                case .success(let response): return response
                case .failure(let e): throw .remote(e)
                }
            }
            guard inFlight.contains(rid) else { throw .unexpected("request \(rid) is not in flight (already waited for?)") }
            try take(next(socketEvery: usesRings ? 64 : 1), awaiting: 0)
        }
    }

    /// Requests submitted and not yet waited for.
    public var requestsInFlight: Int { inFlight.count }

    /// `contains` of every id with up to `window` lookups in flight at once
    /// (ids homed on different nodes are looked up in parallel).
    public func contains(_ ids: [ObjectID], window: Int = 64) throws(ClientError) -> [Bool] {
        try pipelined(ids.map { StoreRequest.contains($0) }, window: window).map { r throws(ClientError) -> Bool in
            guard case .contains(let b) = r else { throw .unexpected("contains") }
            return b
        }
    }

    /// The responses to `requests`, in order, with at most `window` in flight.
    public func pipelined(_ requests: [StoreRequest], window: Int) throws(ClientError) -> [StoreResponse] {
        precondition(window >= 1, "window ≥ 1")
        var tickets: [Ticket] = []
        tickets.reserveCapacity(requests.count)
        var out: [StoreResponse] = []
        out.reserveCapacity(requests.count)
        for r in requests {
            if tickets.count - out.count == window { out.append(try wait(tickets[out.count])) }
            tickets.append(try submit(r))
        }
        while out.count < tickets.count { out.append(try wait(tickets[out.count])) }
        return out
    }
}
