import ArgumentParser
import Foundation
import PlenumBench
import PlenumClient
import PlenumMemory
import PlenumStore
import PlenumWire

/// `plenum bench store`: the Plenum side of the Plasma comparison (SPEC §8)
/// and the bare Unix-socket round trip of this machine (the floor of any
/// operation that crosses a socket), in one run. Every row runs twice: on
/// the client's default path (shared-memory rings) and socket-only.
struct StoreBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "store", abstract: "Store benchmark: the seeds' table, small-object round trips, many clients, and the socket floor.")
    @Option(help: "Repetitions; each row reports the median.") var repeats = 3
    @Option(help: "Operations for the small-object and socket rows (per client in the many-client row).") var operations = 20_000
    @Option(help: "Scale object counts down by this factor (1 = the seeds' table).") var scale = 1
    @Option(help: "Client processes of the many-client row (0: no such row).") var clients = 8
    @Option(help: "Use the store already serving at this socket instead of starting one.") var socket: String?
    @Option(help: "Run only the table rows whose size label contains this (e.g. 500x10kB), on the default path: for profiling.") var only: String?
    @Flag var json = false

    struct Row: Codable { var name: String; var kind: String; var unit: String; var plenum: Double }

    /// Gets of all of a row's objects timed per repeat, back to back, and
    /// reads of all of them, each right after a get of all (the first after
    /// the last get-all sample); the rows report the medians.
    static let getAllSamples = 5
    static let readSamples = 5
    static let table: [(count: Int, size: Int, label: String)] = [
        (1000, 1 << 10, "1000x1kB"), (500, 10 << 10, "500x10kB"), (200, 100 << 10, "200x100kB"),
        (100, 1 << 20, "100x1MB"), (50, 10 << 20, "50x10MB"), (10, 100 << 20, "10x100MB"),
    ]

    func run() throws {
        guard repeats > 0, operations > 0, scale > 0, clients >= 0 else { throw ValidationError("counts must be positive") }
        if let only, !Self.table.contains(where: { $0.label.contains(only) }) {
            throw ValidationError("--only \(only) matches no row (labels: \(Self.table.map(\.label).joined(separator: ", ")))")
        }
        var daemon: Peer.Child?
        let path: String
        if let socket { path = socket } else {
            path = "/tmp/plenum-bench-\(getpid()).sock"
            daemon = try Peer.Child(arguments: ["store", "--socket", path, "--memory", "2G"])
        }
        defer { daemon?.kill(); _ = daemon?.wait() }
        var rows: [Row] = []
        var serial: UInt32 = 0
        // Every row on the default path (rings), then socket-only.
        for (suffix, rings) in only == nil ? [("", true), (", socket", false)] : [("", true)] {
            var maybe: PlenumClient?
            let deadline = Date().addingTimeInterval(60)
            while maybe == nil {
                maybe = try? PlenumClient(socketPath: path, rings: rings)
                if maybe == nil { guard Date() < deadline else { throw CLIError("no store answers at \(path)") }; usleep(20_000) }
            }
            let c = maybe!
            guard c.usesRings == rings else { throw CLIError("the store gave no rings: the default-path rows would measure the socket") }
            rows += try measure(c, suffix: suffix, serial: &serial)
            if clients > 0, only == nil { rows.append(try manyClients(c, socket: path, rings: rings, suffix: suffix, serial: &serial)) }
        }
        if only == nil {
            let floor = try socketFloor(operations: operations)
            rows.append(Row(name: "unix socket 64B round trip (floor)", kind: "latency", unit: "ns", plenum: floor))
        }
        if json {
            let e = JSONEncoder(); e.outputFormatting = [.sortedKeys]
            print(String(decoding: try e.encode(["rows": rows]), as: UTF8.self))
        } else {
            for r in rows { print("\(r.name.padding(toLength: 44, withPad: " ", startingAt: 0)) \(String(format: "%14.0f", r.plenum)) \(r.unit)") }
        }
    }

    func median(_ v: [Double]) -> Double { let s = v.sorted(); return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2 }

    /// The seeds' table and the small-object rows through client `c`.
    func measure(_ c: PlenumClient, suffix: String, serial: inout UInt32) throws -> [Row] {
        var rows: [Row] = []
        func nextID() -> ObjectID {
            serial += 1
            var b = [UInt8](repeating: 0xBE, count: 20)
            // This process's id too: runs against one long-lived store (--socket) never collide.
            withUnsafeBytes(of: UInt32(truncatingIfNeeded: getpid()).bigEndian) { for i in 0..<4 { b[12 + i] = $0[i] } }
            withUnsafeBytes(of: serial.bigEndian) { for i in 0..<4 { b[16 + i] = $0[i] } }
            return ObjectID(bytes: b)!
        }
        for (count0, size, label) in Self.table where only.map({ label.contains($0) }) ?? true {
            let count = max(1, count0 / scale)
            var create: [Double] = [], getAll: [Double] = [], read: [Double] = []
            for _ in 0..<repeats {
                let ids = (0..<count).map { _ in nextID() }
                let t0 = monotonicNanos()
                for id in ids {
                    let l = try c.create(id, dataSize: size)
                    c.write(l, data: { b in b.initializeMemory(as: UInt8.self, repeating: 0x5A) })
                    try c.seal(id, l)
                }
                let t1 = monotonicNanos()
                create.append(Double(t1 - t0) / Double(count))
                // One get of ~100 µs, or one read of a megabyte (~30 µs), is
                // at the mercy of one wake-up or one interrupt: the rows take
                // medians, as Scripts/plasma/plasma_bench.cc does for Plasma.
                // Gets 0–4 of all follow each other (get all: those five);
                // gets 4–8 are each followed by a read of every object, one
                // 8-byte load per 64-byte line (read: those five). Reads
                // after the first re-read objects the last read touched: for
                // objects that fit in cache they measure a warm read, less
                // whatever the client's releases and get evicted between. A
                // get after a read is not a get-all sample: a store idle
                // through a long read may be asleep and answer only once
                // woken.
                var buffers: [ObjectBuffer?] = []
                for k in 0..<(Self.getAllSamples + Self.readSamples - 1) {
                    if k > 0 { for b in buffers { try c.release(b!) } }
                    // The last get's buffers go before the clock starts, as
                    // plasma_bench.cc's out.clear() does: their deinit (about
                    // 35 ns each) is neither a get nor a read, and left to
                    // the assignment below, ARC may free them after t2, in
                    // the read (1,000 of them: ~35 µs of a ~50 µs read).
                    buffers.removeAll()
                    let start = monotonicNanos()
                    buffers = try c.get(ids, timeoutMs: 0)
                    let got = monotonicNanos()
                    if k < Self.getAllSamples { getAll.append(Double(got - start)) }
                    guard k >= Self.getAllSamples - 1 else { continue }
                    let t2 = monotonicNanos()
                    var sum: UInt64 = 0
                    for b in buffers { try b!.withData { p in
                        var i = 0
                        while i + 8 <= p.count { sum &+= p.loadUnaligned(fromByteOffset: i, as: UInt64.self); i += 64 }
                    } }
                    let t3 = monotonicNanos()
                    if sum == 1 { print("") }
                    read.append(Double(count * size) / (Double(t3 - t2) / 1e9))
                }
                for b in buffers { try c.release(b!) }
                _ = try c.delete(ids)
            }
            rows.append(Row(name: "create+write+seal \(label) (per object)\(suffix)", kind: "latency", unit: "ns", plenum: median(create)))
            rows.append(Row(name: "get all \(label)\(suffix)", kind: "latency", unit: "ns", plenum: median(getAll)))
            rows.append(Row(name: "read \(label)\(suffix)", kind: "bandwidth", unit: "bytes/s", plenum: median(read)))
        }
        if only != nil { return rows }
        // Create-and-seal of 1 kB objects: one round trip each.
        var inline: [Double] = []
        for _ in 0..<repeats {
            let count = max(1, 1000 / scale)
            let ids = (0..<count).map { _ in nextID() }
            let payload = [UInt8](repeating: 0x5A, count: 1024)
            let t0 = monotonicNanos()
            for id in ids { _ = try c.createAndSeal([.init(id: id, data: payload)]) }
            inline.append(Double(monotonicNanos() - t0) / Double(count))
            _ = try c.delete(ids)
        }
        rows.append(Row(name: "create-and-seal 1000x1kB (per object)\(suffix)", kind: "latency", unit: "ns", plenum: median(inline)))
        // Small-object round trips.
        let small = nextID()
        try c.put(small, data: [UInt8](repeating: 1, count: 64))
        defer { _ = try? c.delete([small]) }
        var getRelease: [Double] = [], contains: [Double] = []
        for _ in 0..<repeats {
            var t0 = monotonicNanos()
            for _ in 0..<operations { let b = try c.get([small], timeoutMs: 0); try c.release(b[0]!) }
            getRelease.append(Double(operations) / (Double(monotonicNanos() - t0) / 1e9))
            t0 = monotonicNanos()
            for _ in 0..<operations { _ = try c.contains(small) }
            contains.append(Double(operations) / (Double(monotonicNanos() - t0) / 1e9))
        }
        rows.append(Row(name: "get+release 64B\(suffix)", kind: "throughput", unit: "ops/s", plenum: median(getRelease)))
        rows.append(Row(name: "contains\(suffix)", kind: "throughput", unit: "ops/s", plenum: median(contains)))
        return rows
    }

    /// `clients` processes doing get+release of one 64-byte object, started
    /// together at a common instant; ops/s = all operations / (last end −
    /// common start). The median over `repeats`.
    func manyClients(_ c: PlenumClient, socket: String, rings: Bool, suffix: String, serial: inout UInt32) throws -> Row {
        serial += 1
        var b = [UInt8](repeating: 0xC1, count: 20)
        withUnsafeBytes(of: UInt32(truncatingIfNeeded: getpid()).bigEndian) { for i in 0..<4 { b[12 + i] = $0[i] } }
        withUnsafeBytes(of: serial.bigEndian) { for i in 0..<4 { b[16 + i] = $0[i] } }
        let id = ObjectID(bytes: b)!
        try c.put(id, data: [UInt8](repeating: 1, count: 64))
        defer { _ = try? c.delete([id]) }
        var rates: [Double] = []
        for _ in 0..<repeats {
            // Far enough ahead for every child to start and connect.
            let startAt = monotonicNanos() + UInt64(300 + 60 * clients) * 1_000_000
            let children = try (0..<clients).map { _ in
                try Peer.Child(arguments: ["bench", "_store-client", "--socket", socket, "--id", id.hex, "--operations", "\(operations)",
                                           "--start-at", "\(startAt)"] + (rings ? [] : ["--socket-only"]))
            }
            var ends: [UInt64] = []
            for child in children {
                let (status, out) = child.wait()
                guard status == 0, let end = UInt64(out.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                    throw CLIError("a many-client child failed (exit \(status)): \(out)")
                }
                ends.append(end)
            }
            rates.append(Double(clients * operations) / (Double(ends.max()! - startAt) / 1e9))
        }
        return Row(name: "get+release 64B, \(clients) clients\(suffix)", kind: "throughput", unit: "ops/s", plenum: median(rates))
    }

    /// Median round trip of a 64-byte ping-pong with a second process over a
    /// Unix stream socket.
    func socketFloor(operations: Int) throws -> Double {
        let path = "/tmp/plenum-floor-\(getpid()).sock"
        unlink(path)
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard try UnixSocket.withAddress(path, { bind(fd, $0, $1) }) == 0 else { throw CLIError("cannot bind \(path)") }
        Glibc.listen(fd, 1)
        defer { close(fd); unlink(path) }
        let peer = try Peer.Child(arguments: ["bench", "_socket-echo", "--path", path, "--count", "\(operations)"])
        let conn = accept(fd, nil, nil)
        defer { close(conn) }
        var buf = [UInt8](repeating: 7, count: 64)
        var samples: [UInt64] = []
        samples.reserveCapacity(operations)
        for _ in 0..<operations {
            guard let t = PingPong64.roundTrip(conn, &buf) else { throw CLIError("the socket echo process went away") }
            samples.append(t)
        }
        _ = peer.wait()
        samples.sort()
        return Double(samples[samples.count / 2])
    }
}

/// One client of the many-client row: connects, waits for the common start
/// instant, does get+release `operations` times, prints when it finished
/// (monotonic ns).
struct StoreBenchClient: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "_store-client", abstract: "Internal: a client of the many-client row.", shouldDisplay: false)
    @Option var socket: String
    @Option var id: String
    @Option var operations: Int
    @Option var startAt: UInt64
    @Flag var socketOnly = false
    func run() throws {
        guard let id = ObjectID(hex: id) else { throw ValidationError("--id is 40 hex digits") }
        // It reads one 64-byte object: populating the whole region (a
        // quarter second for 2.5 GB) would only delay its start.
        let c = try PlenumClient(socketPath: socket, rings: !socketOnly, prefault: false)
        while monotonicNanos() < startAt { usleep(1000) }
        for _ in 0..<operations {
            guard let b = try c.get([id], timeoutMs: 0)[0] else { throw CLIError("object \(id) is gone") }
            try c.release(b)
        }
        // The last release is applied before this reply: the work is done.
        _ = try c.contains(id)
        print(monotonicNanos())
    }
}

struct SocketEcho: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "_socket-echo", abstract: "Internal: the socket floor's echo process.", shouldDisplay: false)
    @Option var path: String
    @Option var count: Int
    func run() throws {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard try UnixSocket.withAddress(path, { connect(fd, $0, $1) }) == 0 else { throw CLIError("cannot connect to \(path)") }
        PingPong64.echo(fd, count: count)
    }
}
