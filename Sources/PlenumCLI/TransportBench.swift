import ArgumentParser
import Foundation
import Glibc
import Histogram
import PlenumBench
import PlenumClient
import PlenumCluster
import PlenumDaemon
import PlenumMemory
import PlenumStore

/// `plenum bench transports` (SPEC §8, §10.11): the same cluster operations
/// with peer messages over the rings and over gRPC (unary and stream), one
/// local cluster per transport, interleaved per round; beside them a raw
/// TCP round trip and the flushed cache-line floor. The gRPC transports need
/// `plenum-grpc` (Baseline/); `Scripts/bench-transports` builds and runs it.
struct TransportBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "transports", abstract: "Rings vs gRPC (unary, stream) for the cluster's peer messages, with the TCP and cache-line floors.")
    @Option(help: "Operations per series per round.") var operations = 500
    @Option(help: "Rounds; every transport runs every series once per round, interleaved.") var rounds = 3
    @Option(help: "Nodes per cluster (3…8).") var nodes = 4
    @Option(help: "Lookups per window size in the throughput series (one client, 1, 8 and 64 in flight).") var throughputOperations = 3200
    @Option(help: "Transports, comma-separated (default: every one this binary has).") var transports: String?
    @Option(help: "First gRPC port; each cluster (one per transport and round) takes the next 16.") var grpcPortBase = 27400
    @Flag(help: "Print the report as JSON instead of the table.") var json = false
    @Option(help: "Also write the JSON report to this file.") var output: String?

    /// The seeds' figures (../shared/seeds/000–003: POWER9 + ThymesisFlow,
    /// gRPC over the LAN), for reference only: another machine and network.
    static let seeds: [String: String] = ["ping": "3.23 ms (gRPC ping)", "lookup (contains)": "2.6–5 ms (remote lookup)",
                                          "alloc (create on a peer)": "4.99 ms (remote malloc)"]

    struct Row: Codable {
        var name: String
        var note: String
        var seeds: String?
        /// transport → latency (ns)
        var latency: [String: LatencySummary]
        /// transport → p50 / rings' p50
        var ratioToRings: [String: Double]
    }

    struct Report: Codable {
        var benchmark = "transports"
        var nodes: Int
        var operations: Int
        var rounds: Int
        var transports: [String]
        var floorFlushedRttNs: LatencySummary
        var tcpRttNs: LatencySummary
        var rows: [Row]
        /// transport → in-flight count → lookups per second
        var lookupThroughput: [String: [String: Double]]
        var targets: [String: Bool]
        var targetText: String
    }

    func log(_ s: String) { if !json { FileHandleStderr.write(s + "\n") } }

    func run() throws {
        let have = PeerCarriers.available
        let wanted = try transports.map { list in
            try list.split(separator: ",").map { name -> PeerTransport in
                guard let t = PeerTransport(rawValue: String(name)) else { throw ValidationError("unknown transport \(name)") }
                guard have.contains(t) else { throw CLIError("this binary has no \(name) transport: run `plenum-grpc bench transports` (Scripts/bench-transports builds it)") }
                return t
            }
        } ?? have
        guard operations > 0, rounds > 0, (3...8).contains(nodes), throughputOperations > 0, wanted.first == .rings else {
            throw ValidationError("operations and rounds > 0, --nodes 3…8, and rings first among --transports (the ratios are to rings)")
        }
        if wanted.count == 1 { log("note: only rings in this binary; `plenum-grpc bench transports` adds gRPC (Scripts/bench-transports)") }

        // One cluster at a time: on a small machine the idle stores of other
        // clusters (and gRPC's threads) would take the CPUs the measured one
        // needs. Each round starts a fresh cluster per transport, in turn.
        let names = ["ping", "lookup (contains)", "lookup via the store", "get+release", "alloc (create on a peer)", "free (delete on a peer)", "barrier (\(nodes) nodes)"]
        var hists: [String: [PeerTransport: Histogram<UInt64>]] = [:]
        for n in names { hists[n] = Dictionary(uniqueKeysWithValues: wanted.map { ($0, Histogram<UInt64>.latency()) }) }
        var floor = Histogram<UInt64>.latency(), tcp = Histogram<UInt64>.latency()
        var throughput: [String: [Int: [Double]]] = [:]
        for round in 1...rounds {
            log("round \(round)/\(rounds): floors")
            let ring = try Self.ringReport(messages: operations * 4)
            _ = floor.record(ring.floor.flushedRttNs.p50)
            for s in try Self.tcpRoundTrips(count: operations) { _ = tcp.record(s) }
            for (i, t) in wanted.enumerated() {
                log("round \(round)/\(rounds): a \(nodes)-node cluster over \(t.rawValue)")
                let r = try TransportRun(transport: t, nodes: nodes, index: i, grpcPort: grpcPortBase + 16 * ((round - 1) * wanted.count + i))
                defer { r.stop() }
                // ping: the transport alone between two processes.
                if r.transport == .rings {
                    _ = hists["ping"]![.rings]!.record(ring.ring.rttNs.p50)
                } else if let pinger = PeerCarriers.pinger(r.transport), let g = r.config.node(0)?.grpc {
                    for s in try pinger(g, operations) { _ = hists["ping"]![r.transport]!.record(s) }
                }
                try r.series(operations: operations, names: names, into: &hists)
                for k in [1, 8, 64] { throughput[r.transport.rawValue, default: [:]][k, default: []].append(try r.lookupThroughput(inFlight: k, total: throughputOperations)) }
                if r.transport == .rings {
                    for k in [1, 8, 64] {
                        throughput[Self.viaStore, default: [:]][k, default: []].append(try r.lookupThroughput(inFlight: k, total: throughputOperations, viaStore: true))
                    }
                }
            }
        }
        // The rings' ping row is one p50 per round (its child measures many).
        var rows: [Row] = []
        let notes = [
            "rings: `bench ring` round trip between two processes (p50 per round); gRPC: an empty call (or stream echo) from this process to node 0, no store work",
            "node 1's client, an object of node 0 whose home is node 2; rings: the client reads node 2's directory index itself (SPEC §10.4 \"Client peeks\"); gRPC: no index, one peer round trip 1 → 2",
            "the same with PlenumClient.readsIndexes = false: a request to node 1's store, which reads node 2's index (rings) or asks node 2 (gRPC)",
            "rings: lookupAcquire at the home (node 2), forwarded to the owner (node 0), whose grant comes straight back; gRPC: lookup at the home + acquire at the owner; release is one-way",
            "reserve at the home + allocate in node 0's memory (64 B); sealed afterwards, untimed",
            "lookup at the home + delete at the owner (node 0)",
            "every node's client calls it; the coordinator is the name's home",
        ]
        for (i, n) in names.enumerated() {
            var lat: [String: LatencySummary] = [:], ratio: [String: Double] = [:]
            for t in wanted where hists[n]![t]!.totalCount > 0 { lat[t.rawValue] = LatencySummary(hists[n]![t]!) }
            let base = Double(max(1, lat["rings"]?.p50 ?? 1))
            for (t, l) in lat { ratio[t] = Double(l.p50) / base }
            rows.append(Row(name: n, note: notes[i], seeds: Self.seeds[n], latency: lat, ratioToRings: ratio))
        }
        let med = { (a: [Double]) in a.sorted()[a.count / 2] }
        var tp: [String: [String: Double]] = [:]
        for (t, ks) in throughput { tp[t] = Dictionary(uniqueKeysWithValues: ks.map { ("\($0.key)", med($0.value)) }) }
        // Issue 22's targets, all from this run.
        let lookup = rows[1].ratioToRings
        let tcpP50 = Double(max(1, LatencySummary(tcp).p50))
        func ringsOverTCP(_ row: Int) -> Double? { rows[row].latency["rings"].map { Double($0.p50) / tcpP50 } }
        var targets: [String: Bool] = [:]
        if let r = ringsOverTCP(1) { targets["lookup over rings p50 ≤ 1.0 × TCP round trip"] = r <= 1.0 }
        if let r = ringsOverTCP(2) { targets["lookup via the store over rings p50 ≤ 1.0 × TCP round trip"] = r <= 1.0 }
        for (row, what) in [(3, "get+release"), (4, "create on a peer"), (5, "delete on a peer")] {
            if let r = ringsOverTCP(row) { targets["\(what) over rings p50 ≤ 2.0 × TCP round trip"] = r <= 2.0 }
        }
        if let u = lookup["grpc-unary"] { targets["lookup rings ≥ 50× faster than grpc-unary"] = u >= 50 }
        if let s = lookup["grpc-stream"] { targets["lookup rings ≥ 25× faster than grpc-stream"] = s >= 25 }
        // Via the store: rings' request path against gRPC's (the same row of each).
        let viaStore = rows[2].ratioToRings
        if let u = viaStore["grpc-unary"] { targets["lookup via the store: rings ≥ 50× faster than grpc-unary"] = u >= 50 }
        if let s = viaStore["grpc-stream"] { targets["lookup via the store: rings ≥ 25× faster than grpc-stream"] = s >= 25 }
        for (key, what) in [("rings", ""), (Self.viaStore, " via the store")] {
            guard let r = tp[key]?["64"] else { continue }
            targets["one client, 64 in flight\(what): ≥ 200,000 lookups/s over rings"] = r >= 200_000
            if let g = tp["grpc-stream"]?["64"] { targets["one client, 64 in flight\(what): rings ≥ 20× grpc-stream"] = r >= 20 * g }
        }
        let report = Report(nodes: nodes, operations: operations, rounds: rounds, transports: wanted.map(\.rawValue),
                            floorFlushedRttNs: LatencySummary(floor), tcpRttNs: LatencySummary(tcp), rows: rows, lookupThroughput: tp,
                            targets: targets, targetText: "issue 22, same run: p50 ratios to the TCP round trip and to gRPC, throughput in flight")
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        let text = String(decoding: try e.encode(report), as: UTF8.self)
        if let output { try (text + "\n").write(toFile: output, atomically: true, encoding: .utf8) }
        print(json ? text : Self.table(report))
    }

    /// The throughput series of rings with every lookup a request to the store.
    static let viaStore = "rings-via-store"

    static func table(_ r: Report) -> String {
        func us(_ v: UInt64?) -> String { v.map { String(format: "%9.1f", Double($0) / 1000) } ?? "        -" }
        var s = "plenum bench transports: \(r.nodes) nodes per cluster, \(r.operations) ops × \(r.rounds) rounds; µs (p50 / p99), ratio = p50 / rings' p50\n"
        s += "floors: flushed cache-line round trip p50 \(us(r.floorFlushedRttNs.p50)), raw TCP round trip (loopback) p50 \(us(r.tcpRttNs.p50)) p99 \(us(r.tcpRttNs.p99))\n"
        s += "operation".padding(toLength: 26, withPad: " ", startingAt: 0)
        for t in r.transports { s += "  " + "\(t) p50 / p99".padding(toLength: 24, withPad: " ", startingAt: 0) + (t == "rings" ? "" : "  ×rings") }
        s += "  seeds (POWER9, LAN gRPC)\n"
        for row in r.rows {
            s += row.name.padding(toLength: 26, withPad: " ", startingAt: 0)
            for t in r.transports {
                let l = row.latency[t]
                s += "  \(us(l?.p50)) \(us(l?.p99))     "
                if t != "rings" { s += String(format: "  %6.1f", row.ratioToRings[t] ?? .nan) }
            }
            s += "  \(row.seeds ?? "-")\n"
        }
        s += "lookup throughput (ops/s) with 1 / 8 / 64 in flight:\n"
        for t in r.transports + (r.lookupThroughput[Self.viaStore] == nil ? [] : [Self.viaStore]) {
            let v = r.lookupThroughput[t] ?? [:]
            s += "  \(t.padding(toLength: 16, withPad: " ", startingAt: 0)) " + ["1", "8", "64"].map { String(format: "%10.0f", v[$0] ?? .nan) }.joined(separator: " ") + "\n"
        }
        for (k, v) in r.targets.sorted(by: { $0.key < $1.key }) { s += "target \(k): \(v ? "met" : "not met")\n" }
        return s
    }

    /// `bench ring` in child processes: the flushed floor and the ring round trip.
    static func ringReport(messages: Int) throws -> RingBenchReport {
        let child = try Peer.Child(arguments: ["bench", "ring", "--messages", "\(messages)", "--throughput-messages", "20000", "--rounds", "1", "--json"])
        let (status, output) = child.wait()
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        guard status == 0, let r = try? d.decode(RingBenchReport.self, from: Data(output.utf8)) else {
            throw CLIError("the ring floor benchmark failed (exit \(status)): \(output.suffix(400))")
        }
        return r
    }

    /// Raw TCP round trips on loopback (64 bytes, TCP_NODELAY) between this
    /// process and an echo child (`bench _tcp-echo`).
    static func tcpRoundTrips(count: Int) throws -> [UInt64] {
        let l = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(l) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &addr) { p in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                guard bind(l, sa, len) == 0, listen(l, 1) == 0, getsockname(l, sa, &len) == 0 else { throw CLIError("cannot listen on loopback TCP") }
            }
        }
        let port = Int(UInt16(bigEndian: addr.sin_port))
        let child = try Peer.Child(arguments: ["bench", "_tcp-echo", "--port", "\(port)", "--count", "\(count + 100)"])
        let c = accept(l, nil, nil)
        guard c >= 0 else { throw CLIError("the TCP echo child did not connect") }
        defer { close(c) }
        var one: Int32 = 1
        setsockopt(c, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var buf = [UInt8](repeating: 1, count: 64), samples: [UInt64] = []
        for i in 0..<count + 100 {
            guard let t = PingPong64.roundTrip(c, &buf) else { throw CLIError("the TCP echo child went away") }
            if i >= 100 { samples.append(t) }
        }
        _ = child.wait()
        return samples
    }
}

struct TCPEcho: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "_tcp-echo", abstract: "Internal: the TCP floor's echo process.", shouldDisplay: false)
    @Option var port: Int
    @Option var count: Int
    func run() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let ok = withUnsafePointer(to: &addr) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0 else { throw CLIError("cannot connect to 127.0.0.1:\(port)") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        PingPong64.echo(fd, count: count)
    }
}
