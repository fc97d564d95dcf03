import PlenumCluster
import PlenumDaemon

/// The gRPC baseline's entry: registers both gRPC carriers with the daemon
/// (SPEC §10.11). `plenum-grpc` calls this before running the CLI.
public enum PlenumGRPC {
    public static func registerCarriers() {
        PeerCarriers.register(.grpcUnary) { try GRPCPeerCarrier($0, mode: .unary) }
        PeerCarriers.register(.grpcStream) { try GRPCPeerCarrier($0, mode: .stream) }
        PeerCarriers.registerPinger(.grpcUnary) { try GRPCPinger.ping(address: $0, count: $1, stream: false) }
        PeerCarriers.registerPinger(.grpcStream) { try GRPCPinger.ping(address: $0, count: $1, stream: true) }
    }
}
