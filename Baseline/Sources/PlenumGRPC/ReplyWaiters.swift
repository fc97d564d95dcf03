import PlenumCluster
import Synchronization

/// grpc-unary's server side: a call that carries a request stays open until
/// the core answers it (its reply becomes the call's response) or the
/// request timeout passes (an empty response; the asker's core has timed
/// the request out by then too).
///
/// ```
///   call(req from n, corr c) ── open(n,c) ── inbox ──▶ core
///                                                       │ .send(reply, c, to n)
///   response ◀── wait(n,c) ◀── answer(n,c,reply) ◀──────┘
/// ```
/// A list is answered by every chunk up to the one with `last`.
final class ReplyWaiters: Sendable {
    struct Key: Hashable { let node: NodeID; let correlation: UInt64 }
    struct Waiter {
        var replies: [Plenum_Peer_V1_Envelope] = []
        var done = false
        var continuation: CheckedContinuation<[Plenum_Peer_V1_Envelope], Never>?
    }
    let waiters = Mutex<[Key: Waiter]>([:])

    func open(_ key: Key) { waiters.withLock { $0[key] = Waiter() } }

    /// From the loop thread: whether a call was waiting for this reply.
    func answer(_ key: Key, _ e: Plenum_Peer_V1_Envelope, final: Bool) -> Bool {
        let (taken, c) = waiters.withLock { w -> (Bool, Resumption?) in
            guard var x = w[key], !x.done else { return (false, nil) }
            x.replies.append(e)
            if final, let c = x.continuation {
                w[key] = nil
                return (true, c.withReplies(x.replies))
            }
            x.done = final
            w[key] = x
            return (true, nil)
        }
        c?.resume()
        return taken
    }

    /// Waits for the answer, or gives up after `timeout`.
    func wait(_ key: Key, timeout: Duration) async -> [Plenum_Peer_V1_Envelope] {
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.finish(key)
        }
        defer { timer.cancel() }
        return await withCheckedContinuation { c in
            let ready = waiters.withLock { w -> [Plenum_Peer_V1_Envelope]? in
                guard var x = w[key] else { return [] }
                if x.done { w[key] = nil; return x.replies }
                x.continuation = c
                w[key] = x
                return nil
            }
            if let ready { c.resume(returning: ready) }
        }
    }

    /// Ends a wait with what it has (timeout or shutdown).
    func finish(_ key: Key) {
        let c = waiters.withLock { w -> Resumption? in
            guard let x = w[key] else { return nil }
            if let c = x.continuation { w[key] = nil; return c.withReplies(x.replies) }
            w[key]?.done = true
            return nil
        }
        c?.resume()
    }

    func finishAll() {
        let cs = waiters.withLock { w -> [Resumption] in
            let out = w.values.compactMap { x in x.continuation.map { $0.withReplies(x.replies) } }
            w.removeAll()
            return out
        }
        for c in cs { c.resume() }
    }
}

/// A continuation and the value to resume it with, resumed outside the lock.
struct Resumption {
    let continuation: CheckedContinuation<[Plenum_Peer_V1_Envelope], Never>
    let replies: [Plenum_Peer_V1_Envelope]
    func resume() { continuation.resume(returning: replies) }
}

extension CheckedContinuation where T == [Plenum_Peer_V1_Envelope], E == Never {
    func withReplies(_ r: [Plenum_Peer_V1_Envelope]) -> Resumption { Resumption(continuation: self, replies: r) }
}
