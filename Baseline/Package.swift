// swift-tools-version:6.1
//
// The gRPC baseline (issue: "the same peer messages over grpc-swift 2"):
// Plenum's cluster with its peer messages carried by gRPC instead of the
// shared-memory rings. A package of its own so that the core's default build
// never compiles gRPC (README: "The gRPC baseline").
import PackageDescription

let package = Package(
    name: "PlenumGRPC",
    products: [
        .executable(name: "plenum-grpc", targets: ["plenum-grpc"]),
    ],
    dependencies: [
        .package(name: "Plenum", path: ".."),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // The protobuf schema's generated code (Protos/peer.proto; regenerate
        // with Scripts/generate-protos) and the two gRPC peer carriers.
        .target(
            name: "PlenumGRPC",
            dependencies: [
                .product(name: "PlenumCLI", package: "Plenum"),
                .product(name: "PlenumDaemon", package: "Plenum"),
                .product(name: "PlenumCluster", package: "Plenum"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        // `plenum` with the gRPC carriers registered.
        .executableTarget(name: "plenum-grpc", dependencies: ["PlenumGRPC", .product(name: "PlenumCLI", package: "Plenum")]),
        .testTarget(name: "PlenumGRPCTests", dependencies: ["PlenumGRPC"]),
    ]
)
