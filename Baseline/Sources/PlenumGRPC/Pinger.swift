import Dispatch
import GRPCCore
import GRPCNIOTransportHTTP2Posix
import PlenumCluster
import Synchronization

/// `plenum bench transports`' ping row for the gRPC transports: sequential
/// echoes of an empty envelope against a node's carrier endpoint, as a
/// unary call each (`Ping`) or over one stream (`PingStream`).
enum GRPCPinger {
    static func ping(address: String, count: Int, stream: Bool) throws -> [UInt64] {
        guard let (host, port) = ClusterConfig.hostPort(address) else { throw CarrierError("\(address) is not host:port") }
        let result = Mutex<Result<[UInt64], any Error>>(.success([]))
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                let r = try await withGRPCClient(transport: .http2NIOPosix(target: .ipv4(host: host, port: port), transportSecurity: .plaintext)) { client in
                    let stub = Plenum_Peer_V1_PeerLink.Client(wrapping: client)
                    let e = Plenum_Peer_V1_Envelope.with { $0.from = .max }
                    var samples: [UInt64] = []
                    samples.reserveCapacity(count)
                    if stream {
                        let (out, feed) = AsyncStream<Plenum_Peer_V1_Envelope>.makeStream()
                        return try await stub.pingStream(requestProducer: { writer in
                            for await x in out { try await writer.write(x) }
                        }, onResponse: { response in
                            var it = response.messages.makeAsyncIterator()
                            var s: [UInt64] = []
                            for i in 0..<count + 100 {
                                let t0 = ContinuousClock.now
                                feed.yield(e)
                                guard try await it.next() != nil else { break }
                                if i >= 100 { s.append(nanos(ContinuousClock.now - t0)) }
                            }
                            feed.finish()
                            return s
                        })
                    }
                    for i in 0..<count + 100 {
                        let t0 = ContinuousClock.now
                        _ = try await stub.ping(e)
                        if i >= 100 { samples.append(nanos(ContinuousClock.now - t0)) }
                    }
                    return samples
                }
                result.withLock { $0 = .success(r) }
            } catch { result.withLock { $0 = .failure(error) } }
            done.signal()
        }
        done.wait()
        return try result.withLock { $0 }.get()
    }

    static func nanos(_ d: Duration) -> UInt64 {
        let (s, a) = d.components
        return UInt64(s) * 1_000_000_000 + UInt64(a / 1_000_000_000)
    }
}
