import GRPCCore
import PlenumCluster

/// The server half of both gRPC transports (SPEC §10.11).
struct PeerLinkService: Plenum_Peer_V1_PeerLink.SimpleServiceProtocol {
    let shared: CarrierShared

    /// grpc-unary: one message; a request waits for its reply.
    func call(request: Plenum_Peer_V1_Envelope, context: ServerContext) async throws -> Plenum_Peer_V1_Replies {
        let node = request.from
        guard node != shared.me, shared.outboxes[node] != nil else {
            shared.count { $0.malformed += 1 }
            throw RPCError(code: .invalidArgument, message: "node \(node) is not a peer of node \(shared.me)")
        }
        let m: PeerMessage
        do { m = try EnvelopeCodec.decode(request) } catch {
            shared.count { $0.malformed += 1 }
            throw RPCError(code: .invalidArgument, message: "\(error)")
        }
        shared.count { $0.received += 1 }
        guard !EnvelopeCodec.isReply(m.kind), request.correlation != 0 else {
            shared.inbox.deliver(m, correlation: request.correlation, from: node)
            return Plenum_Peer_V1_Replies()
        }
        let key = ReplyWaiters.Key(node: node, correlation: request.correlation)
        shared.waiters.open(key)
        shared.inbox.deliver(m, correlation: request.correlation, from: node)
        var out = Plenum_Peer_V1_Replies()
        out.replies = await shared.waiters.wait(key, timeout: shared.timeout)
        return out
    }

    /// grpc-stream: the lower id's stream; its first envelope names it.
    func stream(request: RPCAsyncSequence<Plenum_Peer_V1_Envelope, any Error>, response: RPCWriter<Plenum_Peer_V1_Envelope>,
                context: ServerContext) async throws {
        var it = request.makeAsyncIterator()
        guard let first = try await it.next(), first.message == nil else {
            throw RPCError(code: .invalidArgument, message: "a stream opens with an envelope that has `from` and no message")
        }
        let node = first.from
        guard node < shared.me, let out = shared.outboxes[node] else {
            throw RPCError(code: .invalidArgument, message: "node \(node) does not open streams to node \(shared.me) (the lower id opens)")
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                while let e = await out.next() { try await response.write(e) }
            }
            while let e = try await it.next() { shared.receive(e, from: node) }
            group.cancelAll()
        }
    }

    /// Benchmarks: an echo with no store work (the ping row).
    func ping(request: Plenum_Peer_V1_Envelope, context: ServerContext) async throws -> Plenum_Peer_V1_Envelope { request }

    func pingStream(request: RPCAsyncSequence<Plenum_Peer_V1_Envelope, any Error>, response: RPCWriter<Plenum_Peer_V1_Envelope>,
                    context: ServerContext) async throws {
        for try await e in request { try await response.write(e) }
    }
}
