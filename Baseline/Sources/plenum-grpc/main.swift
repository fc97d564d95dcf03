import PlenumCLI
import PlenumGRPC

// `plenum` with the gRPC peer transports (cluster file: transport =
// "grpc-unary" or "grpc-stream"); everything else is the same CLI.
PlenumGRPC.registerCarriers()
PlenumCLI.main()
