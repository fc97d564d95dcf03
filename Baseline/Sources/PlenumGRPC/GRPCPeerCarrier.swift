import Dispatch
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import GRPCProtobuf
import Logging
import PlenumCluster
import PlenumDaemon
import Synchronization

/// The gRPC baseline's carrier (SPEC §10.11): the §10.5 messages as the
/// protobuf of `Protos/plenum_peer.proto`, over HTTP/2 on TCP.
///
/// - `grpc-unary`: one `Call` per message. A request's reply is the call's
///   response (`ReplyWaiters`); one-way messages and late replies are calls
///   of their own with an empty response.
/// - `grpc-stream`: one `Stream` per pair of nodes, opened by the lower id
///   (first envelope: `from`, no message); the opener's messages go up the
///   request stream, the other node's down the response stream. Broken
///   streams are reopened every 100 ms.
final class GRPCPeerCarrier: PeerCarrier {
    enum Mode: String { case unary = "grpc-unary", stream = "grpc-stream" }

    let mode: Mode
    let shared: CarrierShared
    let server: GRPCServer<HTTP2ServerTransport.Posix>
    let clients: [NodeID: GRPCClient<HTTP2ClientTransport.Posix>]
    let tasks = Mutex<[Task<Void, Never>]>([])

    init(_ context: PeerCarrierContext, mode: Mode) throws {
        self.mode = mode
        let me = context.me, config = context.config
        guard let mine = config.node(me)?.grpc, let (host, port) = ClusterConfig.hostPort(mine) else {
            throw CarrierError("node \(me) has no grpc = \"host:port\" in the cluster file")
        }
        var outboxes: [NodeID: Outbox] = [:]
        for n in config.nodes where n.id != me { outboxes[n.id] = Outbox() }
        shared = CarrierShared(me: me, inbox: context.inbox, logger: context.logger, outboxes: outboxes,
                               timeout: .milliseconds(config.requestTimeoutMillis))
        server = GRPCServer(transport: .http2NIOPosix(address: .ipv4(host: host, port: port), transportSecurity: .plaintext),
                            services: [PeerLinkService(shared: shared)])
        var clients: [NodeID: GRPCClient<HTTP2ClientTransport.Posix>] = [:]
        for n in config.nodes where n.id != me {
            guard let g = n.grpc, let (h, p) = ClusterConfig.hostPort(g) else { throw CarrierError("node \(n.id) has no grpc = \"host:port\"") }
            // A peer that starts later is retried within 50 ms…1 s (the
            // default backs off up to two minutes), and calls wait for the
            // connection instead of failing while it is being made.
            var tc = HTTP2ClientTransport.Posix.Config.defaults
            tc.backoff = .init(initial: .milliseconds(50), max: .seconds(1), multiplier: 1.6, jitter: 0.2)
            clients[n.id] = GRPCClient(transport: try .http2NIOPosix(target: .dns(host: h, port: p), transportSecurity: .plaintext, config: tc))
        }
        self.clients = clients
        try startServing(address: mine)
        for (node, client) in clients {
            spawn { try? await client.runConnections() }
            if mode == .stream, me < node { spawn { [shared] in await Self.keepStreamOpen(to: node, client: client, shared: shared) } }
            if mode == .unary { spawn { [shared] in await Self.pumpCalls(to: node, client: client, shared: shared) } }
        }
        context.logger.info("gRPC peer carrier serving", metadata: ["address": "\(mine)", "mode": "\(mode.rawValue)"])
    }

    func spawn(_ body: @escaping @Sendable () async -> Void) {
        let t = Task { await body() }
        tasks.withLock { $0.append(t) }
    }

    /// Serves in the background; returns once the address is bound, throws
    /// if it cannot be.
    func startServing(address: String) throws {
        let server = server
        spawn { [shared] in
            do { try await server.serve() } catch { shared.logger.error("gRPC server stopped", metadata: ["error": "\(error)"]) }
        }
        let bound = Mutex<Result<Void, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                _ = try await server.transport.listeningAddress
                bound.withLock { $0 = .success(()) }
            } catch { bound.withLock { $0 = .failure(error) } }
            done.signal()
        }
        guard done.wait(timeout: .now() + 10) == .success else { throw CarrierError("gRPC server at \(address) did not start listening in 10 s") }
        if case .failure(let e)? = bound.withLock({ $0 }) {
            stop()
            throw CarrierError("cannot listen for gRPC at \(address): \(e) (is the port in use?)")
        }
    }

    // MARK: PeerCarrier

    func send(_ message: PeerMessage, correlation: UInt64, to node: NodeID) {
        guard let out = shared.outboxes[node] else { return }
        let e: Plenum_Peer_V1_Envelope
        do { e = try EnvelopeCodec.encode(message, from: shared.me, correlation: correlation) } catch { return }
        if mode == .unary, EnvelopeCodec.isReply(message.kind), correlation != 0 {
            var final = true
            if case .listChunk(_, let last) = message { final = last }
            // The answer to a call that is still open travels as its response.
            if shared.waiters.answer(.init(node: node, correlation: correlation), e, final: final) {
                shared.count { $0.sent += 1 }
                return
            }
        }
        shared.count { $0.sent += 1 }
        out.push(e)
    }

    func stop() {
        guard !shared.stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for o in shared.outboxes.values { o.close() }
        shared.waiters.finishAll()
        server.beginGracefulShutdown()
        for c in clients.values { c.beginGracefulShutdown() }
        for t in tasks.withLock({ $0 }) { t.cancel() }
    }

    var counters: [String: Int] {
        let c = shared.counters.withLock { $0 }
        return ["sent": c.sent, "received": c.received, "call_failures": c.callFailures, "malformed": c.malformed,
                "streams_opened": c.streamsOpened, "outbox_dropped": shared.outboxes.values.reduce(0) { $0 + $1.dropped }]
    }

    // MARK: grpc-unary

    static var waitForReady: CallOptions {
        var o = CallOptions.defaults
        o.waitForReady = true
        return o
    }

    /// Takes the peer's envelopes in order and starts one call each (calls
    /// run concurrently; a request's reply arrives as its response).
    static func pumpCalls(to node: NodeID, client: GRPCClient<HTTP2ClientTransport.Posix>, shared: CarrierShared) async {
        let stub = Plenum_Peer_V1_PeerLink.Client(wrapping: client)
        guard let out = shared.outboxes[node] else { return }
        // Discarding: a long-lived daemon must not keep every finished call.
        await withDiscardingTaskGroup { group in
            while let e = await out.next() {
                group.addTask {
                    do {
                        let r = try await stub.call(e, options: waitForReady)
                        for x in r.replies { shared.receive(x, from: node) }
                    } catch {
                        shared.count { $0.callFailures += 1 }
                        shared.warn("gRPC call to node \(node) failed", error)
                    }
                }
            }
            group.cancelAll()
        }
    }

    // MARK: grpc-stream

    /// The lower id's side of a pair: keeps one stream open to `node`.
    static func keepStreamOpen(to node: NodeID, client: GRPCClient<HTTP2ClientTransport.Posix>, shared: CarrierShared) async {
        let stub = Plenum_Peer_V1_PeerLink.Client(wrapping: client)
        guard let out = shared.outboxes[node] else { return }
        while !shared.stopped.load(ordering: .acquiring), !Task.isCancelled {
            do {
                try await stub.stream(options: waitForReady, requestProducer: { writer in
                    var open = Plenum_Peer_V1_Envelope()
                    open.from = shared.me
                    try await writer.write(open)
                    shared.count { $0.streamsOpened += 1 }
                    while let e = await out.next() { try await writer.write(e) }
                }, onResponse: { response in
                    for try await e in response.messages { shared.receive(e, from: node) }
                })
            } catch {
                shared.warn("gRPC stream to node \(node) broke; reopening", error)
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}

/// What the carrier's tasks and its service share.
final class CarrierShared: Sendable {
    struct Counters { var sent = 0, received = 0, callFailures = 0, malformed = 0, streamsOpened = 0 }
    let me: NodeID
    let inbox: PeerInbox
    let logger: Logger
    let outboxes: [NodeID: Outbox]
    let timeout: Duration
    let waiters = ReplyWaiters()
    let counters = Mutex(Counters())
    let stopped = Atomic<Bool>(false)
    let lastWarning = Mutex<[String: ContinuousClock.Instant]>([:])

    init(me: NodeID, inbox: PeerInbox, logger: Logger, outboxes: [NodeID: Outbox], timeout: Duration) {
        self.me = me
        self.inbox = inbox
        self.logger = logger
        self.outboxes = outboxes
        self.timeout = timeout
    }

    func count(_ body: (inout Counters) -> Void) { counters.withLock { body(&$0) } }

    /// One envelope from `node`: decoded by the §10.5 rules, then to the
    /// loop. A malformed one is counted and dropped.
    func receive(_ e: Plenum_Peer_V1_Envelope, from node: NodeID) {
        guard e.from == node else {
            count { $0.malformed += 1 }
            return
        }
        do {
            let m = try EnvelopeCodec.decode(e)
            count { $0.received += 1 }
            inbox.deliver(m, correlation: e.correlation, from: node)
        } catch {
            count { $0.malformed += 1 }
            warn("malformed gRPC peer message from node \(node)", error)
        }
    }

    /// At most one warning per second per text.
    func warn(_ text: String, _ error: any Error) {
        let now = ContinuousClock.now
        let due = lastWarning.withLock { w -> Bool in
            if let t = w[text], now - t < .seconds(1) { return false }
            w[text] = now
            return true
        }
        if due { logger.warning("\(text)", metadata: ["error": "\(error)"]) }
    }
}

struct CarrierError: Error, CustomStringConvertible {
    let description: String
    init(_ s: String) { description = s }
}
