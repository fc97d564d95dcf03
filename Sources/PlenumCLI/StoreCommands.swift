import ArgumentParser
import Foundation
import Logging
import PlenumClient
import PlenumDaemon
import PlenumMemory
import PlenumStore

/// The per-user default socket of a local store.
let defaultSocket = "/tmp/plenum-\(getuid()).sock"

struct StoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "store", abstract: "Run a store daemon (io_uring, Unix socket, zero-copy objects in a region).")
    @Option(help: "Unix socket path.") var socket = defaultSocket
    @Option(help: "Object memory, e.g. 1G.") var memory: ByteSize?
    @Option(help: "Region file (default: a fresh file in /dev/shm, removed on exit).") var region: String?
    @Flag(help: "Reformat an existing --region file (never one a running store holds); it is kept on exit.") var force = false
    @Option var numaNode: Int?
    @Option var lineSize = LineSize.default
    @Option(help: "Cluster file (TOML, SPEC §10.1): run one node of a cluster.") var cluster: String?
    @Option(help: "This node's id in the cluster file.") var node: UInt32?
    @Option(help: "Socket file mode (octal): 600 admits this uid only; 660/666 admit others, who may only read unless named by --writer-uid.") var socketMode = "600"
    @Option(help: "A uid besides this daemon's own that may change the store (repeatable).") var writerUid: [UInt32] = []
    @Option(help: "Disconnect a ring client that takes none of its waiting replies for this long (ms).") var replyStallMs: UInt64 = 10_000
    @Option(help: "Also serve Plasma 11 clients (pyarrow.plasma, libplasma) on this socket (SPEC §11).") var plasmaSocket: String?
    @Option(help: "Rewrite this file every second with the store's metrics in Prometheus's text format, for node_exporter's textfile collector (SPEC §10.9).") var metricsFile: String?
    @Flag(inversion: .prefixedNo, help: "Allocate and map the whole region at start: no page faults on later writes, and a /dev/shm too small fails now.") var prefault = true
    @Flag(help: "Ask for transparent huge pages over the region (tmpfs: needs /sys/kernel/mm/transparent_hugepage/shmem_enabled = advise).") var hugePages = false
    @OptionGroup var log: LogOptions

    func validate() throws {
        if cluster != nil, node == nil { throw ValidationError("--cluster needs --node N") }
        if cluster == nil, memory == nil { throw ValidationError("--memory is required (or run a cluster node with --cluster FILE --node N)") }
    }

    func run() throws {
        let logger = log.bootstrap()
        var o: StoreDaemon.Options
        if let cluster, let node {
            o = try StoreDaemon.Options(cluster: try loadCluster(cluster), node: node)
        } else {
            o = StoreDaemon.Options(socketPath: socket, memory: memory!.bytes)
            o.regionPath = region
            o.numaNode = numaNode
            o.lineSize = lineSize
        }
        o.forceRegion = force
        o.prefault = prefault
        o.hugePages = hugePages
        guard let mode = mode_t(socketMode, radix: 8), mode & ~0o777 == 0, mode & 0o600 == 0o600 else {
            throw ValidationError("--socket-mode is an octal mode such as 600 or 660 (the owner keeps read and write)")
        }
        o.socketMode = mode
        o.writerUIDs = Set(writerUid.map { uid_t($0) })
        o.plasmaSocketPath = plasmaSocket
        o.metricsFile = metricsFile
        o.replyStallNanos = replyStallMs.multipliedReportingOverflow(by: 1_000_000).overflow ? .max : replyStallMs * 1_000_000
        let daemon = try StoreDaemon(o, logger: logger)
        try daemon.run()
    }
}

struct ClientOptions: ParsableArguments {
    @Option(help: "Socket of the store.") var socket: String?
    @Option(name: .customLong("via"), help: "Talk to node N of the local cluster (`plenum cluster up`).") var via: Int?
    var socketPath: String { socket ?? via.map { LocalCluster.defaultDir + "/node\($0).sock" } ?? defaultSocket }
    func connect(_ access: PlenumClient.Access = .readWrite) throws -> PlenumClient { try PlenumClient(socketPath: socketPath, access: access, prefault: false) }
}

/// A runtime failure of a CLI command: printed as `Error: …`, exit 1, no usage.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Parses 40 hex digits, or hashes `--name` to an id (five CRC32C words of
/// the name with different seeds: deterministic, not cryptographic).
func objectID(_ text: String?, name: String?) throws -> ObjectID {
    if let name {
        let bytes = Array(name.utf8)
        var out: [UInt8] = []
        for i in 0..<5 {
            let crc = bytes.withUnsafeBytes { CRC32C.checksum($0, seed: UInt32(i) &* 0x9E37_79B9) }
            withUnsafeBytes(of: crc.bigEndian) { out += $0 }
        }
        return ObjectID(bytes: out)!
    }
    guard let text, let id = ObjectID(hex: text) else { throw ValidationError("object ids are 40 hex digits (or use --name)") }
    return id
}

struct PutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "put", abstract: "Store a file as a sealed object.")
    @Argument(help: "ID FILE, or FILE with --name.") var arguments: [String]
    @Option(help: "Name hashed to the object id.") var name: String?
    @Option(help: "Place the object in this cluster node's memory (default: local, or the peer with most free memory when full).") var node: UInt32?
    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard arguments.count == (name == nil ? 2 : 1) else { throw ValidationError("usage: plenum put ID FILE, or plenum put --name NAME FILE") }
    }

    func run() throws {
        let oid = try objectID(name == nil ? arguments[0] : nil, name: name)
        let file = arguments.last!
        guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
        try client.connect().put(oid, data: Array(data), onNode: node)
        print(oid.hex)
    }
}

struct GetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: "Write a sealed object's data to a file or stdout.")
    @Argument var id: String?
    @Option var name: String?
    @Option(name: .shortAndLong, help: "Output file (default stdout).") var output: String?
    @Option(help: "Wait this long for the object to be sealed (ms; -1 forever).") var timeoutMs: Int64 = 0
    @Flag(help: "Check the bytes against the digest taken when the object was sealed; exit 1 if they changed.") var verify = false
    @OptionGroup var client: ClientOptions

    func run() throws {
        let oid = try objectID(id, name: name)
        let c = try client.connect(.readOnly)
        guard let buffer = try c.get([oid], timeoutMs: timeoutMs).first ?? nil else {
            throw CLIError("object \(oid.hex) is not in the store (or not sealed yet)")
        }
        if verify, let problem = try c.verify([oid]).first ?? nil {
            try? c.release(buffer)
            throw CLIError(problem.description)
        }
        let data = try buffer.data
        try c.release(buffer)
        if let output { try Data(data).write(to: URL(fileURLWithPath: output)) } else { FileHandle.standardOutput.write(Data(data)) }
    }
}

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the store's objects.")
    @OptionGroup var client: ClientOptions
    @Flag var json = false
    func run() throws {
        let rows = try client.connect(.readOnly).list()
        if json {
            let doc = rows.map { r -> [String: Any] in
                ["id": r.id.hex, "region": r.location.region, "data_size": r.location.dataSize, "metadata_size": r.location.metadataSize,
                 "ref_count": r.refCount, "state": r.state.rawValue, "construct_ns": r.constructNanos.map { Int($0) } ?? -1]
            }
            print(String(decoding: try JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys]), as: UTF8.self))
            return
        }
        for r in rows { print("\(r.id.hex)  \(r.state.rawValue)  data \(r.location.dataSize)  metadata \(r.location.metadataSize)  refs \(r.refCount)  region \(r.location.region)") }
        print("\(rows.count) object(s)")
    }
}

struct RemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete objects.")
    @Argument var ids: [String]
    @OptionGroup var client: ClientOptions
    func run() throws {
        let oids = try ids.map { try objectID($0, name: nil) }
        let results = try client.connect().delete(oids)
        var failed = false
        for (id, r) in zip(oids, results) {
            if let r { print("\(id.hex): \(r)"); failed = true } else { print("\(id.hex): deleted") }
        }
        if failed { throw ExitCode(1) }
    }
}

struct StatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stat", abstract: "Capacity, use, objects, clients, evictions.")
    @OptionGroup var client: ClientOptions
    @Flag var json = false
    func run() throws {
        let s = try client.connect(.readOnly).stats()
        if json {
            let doc: [String: Any] = ["capacity": s.capacity, "used": s.used, "objects": s.objects, "sealed": s.sealed,
                                      "clients": s.clients, "evictions": s.evictions, "evicted_bytes": s.evictedBytes,
                                      "fragmentation": s.allocator.fragmentation]
            print(String(decoding: try JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys]), as: UTF8.self))
        } else {
            print("capacity \(s.capacity) B, used \(s.used) B, \(s.objects) object(s) (\(s.sealed) sealed), \(s.clients) client(s), \(s.evictions) eviction(s) (\(s.evictedBytes) B), fragmentation \(String(format: "%.2f", s.allocator.fragmentation))")
        }
    }
}

/// Internal: one client process of the integration tests' workload.
struct ClientWorkload: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "_client-workload", abstract: "Internal: a test client.", shouldDisplay: false)
    @Option var socket: String
    @Option var client: UInt8
    @Option var operations = 10_000
    @Flag(help: "Create one object, leave it unsealed, then wait to be killed.") var hang = false
    @Flag(help: "Send requests through shared-memory rings.") var rings = false

    func run() throws {
        let c = try PlenumClient(socketPath: socket)
        if rings { try c.useRings() }
        if hang {
            _ = try c.create(ObjectID(bytes: [UInt8](repeating: client, count: 20))!, dataSize: 1 << 20)
            FileHandle.standardOutput.write(Data("created\n".utf8))
            while true { sleep(1) }
        }
        var done = 0, mismatches = 0, n: UInt32 = 0
        while done < operations {
            n += 1
            var idBytes = [UInt8](repeating: client, count: 20)
            withUnsafeBytes(of: n.bigEndian) { for i in 0..<4 { idBytes[16 + i] = $0[i] } }
            let id = ObjectID(bytes: idBytes)!
            let size = Int(n * 7919 % 20000) + 1
            let data = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(n) &+ Int(client)) }
            try c.put(id, data: data, metadata: [client, 1, 2])          // create + seal: 2 requests
            guard let b = try c.get([id], timeoutMs: 0).first ?? nil else { mismatches += 1; done += 3; continue }
            if try b.data != data || b.withMetadata({ Array($0) }) != [client, 1, 2] { mismatches += 1 }
            try c.release(b)
            if try c.delete([id]) != [nil] { mismatches += 1 }
            done += 5
        }
        print(#"{"operations":\#(done),"mismatches":\#(mismatches)}"#)
    }
}
