import Foundation
import Glibc
import Histogram
import PlenumBench
import PlenumClient
import PlenumCluster
import PlenumMemory
import PlenumStore

/// One local cluster of `bench transports`, its peer messages over one
/// transport: node 1's client measures operations on node 0's objects,
/// homed at node 2.
final class TransportRun {
    let transport: PeerTransport
    let config: ClusterConfig
    let dir: String
    let c0: PlenumClient, c1: PlenumClient
    let live: [NodeID]
    var serial = 0
    let tag: UInt8
    /// Sealed objects of node 0 homed at node 2, for lookups and gets.
    var remote: [ObjectID] = []

    init(transport: PeerTransport, nodes: Int, index: Int, grpcPort: Int) throws {
        self.transport = transport
        tag = 0xE0 &+ UInt8(index)
        dir = "/tmp/plenum-bench-transports-\(getpid())-\(transport.rawValue)"
        config = try LocalCluster.start(nodes: nodes, memory: 64 << 20, dir: dir, tag: "bt-\(getpid())-\(index)", transport: transport, grpcPortBase: grpcPort)
        try LocalCluster.waitReady(config, dir: dir, seconds: 60)
        live = config.nodes.map(\.id)
        c0 = try PlenumClient(socketPath: config.nodes[0].socket)
        c1 = try PlenumClient(socketPath: config.nodes[1].socket)
        try c0.useRings()
        try c1.useRings()
        remote = (0..<256).map { _ in freshID(home: 2) }
        for id in remote { try c0.put(id, data: [UInt8](repeating: 3, count: 64)) }
    }

    func stop() {
        LocalCluster.stop(config, dir: dir, removeRegions: true)
        try? FileManager.default.removeItem(atPath: dir)
    }

    func freshID(home: NodeID?) -> ObjectID {
        while true {
            serial += 1
            var b = [UInt8](repeating: tag, count: 20)
            withUnsafeBytes(of: UInt64(serial).bigEndian) { for i in 0..<8 { b[12 + i] = $0[i] } }
            let id = ObjectID(bytes: b)!
            if home == nil || Home.of(id, among: live) == home! { return id }
        }
    }

    /// Every series but ping, once.
    func series(operations: Int, names: [String], into h: inout [String: [PeerTransport: Histogram<UInt64>]]) throws {
        func time(_ name: String, _ body: () throws -> Void) rethrows {
            let t0 = monotonicNanos()
            try body()
            _ = h[name]![transport]!.record(monotonicNanos() &- t0)
        }
        // The client reads the home's index itself where there is one
        // (SPEC §10.4 "Client peeks"), then the same lookups by its store.
        for (row, reads) in [(1, true), (2, false)] {
            c1.readsIndexes = reads
            for i in 0..<operations {
                try time(names[row]) { guard try c1.contains(remote[i % remote.count]) else { throw CLIError("\(transport.rawValue): lookup missed") } }
            }
        }
        c1.readsIndexes = true
        for i in 0..<operations {
            try time(names[3]) {
                guard let b = try c1.get([remote[i % remote.count]], timeoutMs: 0).first ?? nil else { throw CLIError("\(transport.rawValue): get missed") }
                try c1.release(b)
            }
        }
        var made: [ObjectID] = []
        for _ in 0..<operations {
            let id = freshID(home: 2)
            var l = ObjectLocation(offset: 0, dataSize: 0, metadataSize: 0, reserved: 0)
            try time(names[4]) { l = try c1.create(id, dataSize: 64, onNode: 0) }
            try c1.seal(id, l)
            made.append(id)
        }
        for id in made {
            try time(names[5]) { guard try c1.delete([id]).first! == nil else { throw CLIError("\(transport.rawValue): delete refused") } }
        }
        let barriers = max(10, operations / 10)
        let partners = config.nodes.filter { $0.id != 1 }.map(\.socket)
        let threads = partners.map { s in
            Thread {
                guard let c = try? PlenumClient(socketPath: s) else { return }
                try? c.useRings()
                for _ in 0..<barriers { _ = try? c.barrier(11) }
            }
        }
        threads.forEach { $0.start() }
        for _ in 0..<barriers { try time(names[6]) { _ = try c1.barrier(11) } }
        while threads.contains(where: { !$0.isFinished }) { usleep(1000) }
    }

    /// Lookups per second from one client of node 1 with `k` lookups in
    /// flight (`PlenumClient.contains(_:window:)`): the ids are homed at
    /// node 2 and sealed in node 0's memory. `viaStore`: the client reads
    /// no index itself (SPEC §10.4 "Client peeks"), every lookup is a request.
    func lookupThroughput(inFlight k: Int, total: Int, viaStore: Bool = false) throws -> Double {
        let c = try PlenumClient(socketPath: config.nodes[1].socket)
        try c.useRings()
        c.readsIndexes = !viaStore
        let ids = (0..<total).map { remote[$0 % remote.count] }
        let t0 = monotonicNanos()
        let found = try c.contains(ids, window: k)
        let dt = Double(monotonicNanos() &- t0) / 1e9
        let missing = found.filter { !$0 }.count
        guard missing == 0 else { throw CLIError("\(transport.rawValue): \(missing) lookups found nothing in the throughput series") }
        return Double(total) / dt
    }
}
