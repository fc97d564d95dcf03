import Synchronization

/// Envelopes for one peer, pushed by the daemon's loop thread (never
/// blocking) and taken by whichever stream currently carries them (one
/// taker at a time: a new taker ends the previous one's wait). Bounded: beyond `bound` the newest are dropped and
/// counted; their requests time out in the core as on a full ring.
final class Outbox: Sendable {
    struct State {
        var queue: [Plenum_Peer_V1_Envelope] = []
        var head = 0
        var waiter: CheckedContinuation<Plenum_Peer_V1_Envelope?, Never>?
        var waiterToken: UInt64 = 0
        var tokens: UInt64 = 0
        var dropped = 0
        var closed = false
    }
    let state = Mutex(State())
    static let bound = 1 << 16

    func push(_ e: Plenum_Peer_V1_Envelope) {
        let w = state.withLock { s -> CheckedContinuation<Plenum_Peer_V1_Envelope?, Never>? in
            guard !s.closed else { return nil }
            if let w = s.waiter { s.waiter = nil; return w }
            guard s.queue.count - s.head < Self.bound else { s.dropped += 1; return nil }
            s.queue.append(e)
            return nil
        }
        w?.resume(returning: e)
    }

    /// The next envelope; nil once closed or when the taking task is cancelled.
    func next() async -> Plenum_Peer_V1_Envelope? {
        if let e = state.withLock({ s -> Plenum_Peer_V1_Envelope? in
            guard s.head < s.queue.count else { return nil }
            let e = s.queue[s.head]
            s.head += 1
            if s.head == s.queue.count { s.queue.removeAll(keepingCapacity: true); s.head = 0 }
            return e
        }) { return e }
        let token = state.withLock { s -> UInt64 in s.tokens += 1; return s.tokens }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Plenum_Peer_V1_Envelope?, Never>) in
                let (now, previous) = state.withLock { s -> (Bool, CheckedContinuation<Plenum_Peer_V1_Envelope?, Never>?) in
                    if s.closed || Task.isCancelled { return (true, nil) }
                    if s.head < s.queue.count { return (true, nil) }
                    // The newest taker wins (a stream that replaced a
                    // broken one): the previous one ends.
                    let previous = s.waiter
                    s.waiter = c
                    s.waiterToken = token
                    return (false, previous)
                }
                previous?.resume(returning: nil)
                if now {
                    // Closed, cancelled, or something arrived meanwhile.
                    let e = state.withLock { s -> Plenum_Peer_V1_Envelope? in
                        guard !s.closed, s.head < s.queue.count else { return nil }
                        let e = s.queue[s.head]
                        s.head += 1
                        if s.head == s.queue.count { s.queue.removeAll(keepingCapacity: true); s.head = 0 }
                        return e
                    }
                    c.resume(returning: e)
                }
            }
        } onCancel: {
            // Only this task's own wait (a newer taker may have replaced it).
            let w = state.withLock { s -> CheckedContinuation<Plenum_Peer_V1_Envelope?, Never>? in
                guard s.waiterToken == token else { return nil }
                defer { s.waiter = nil; s.waiterToken = 0 }
                return s.waiter
            }
            w?.resume(returning: nil)
        }
    }

    func close() {
        let w = state.withLock { s -> CheckedContinuation<Plenum_Peer_V1_Envelope?, Never>? in
            s.closed = true
            defer { s.waiter = nil }
            return s.waiter
        }
        w?.resume(returning: nil)
    }

    var dropped: Int { state.withLock { $0.dropped } }
}
