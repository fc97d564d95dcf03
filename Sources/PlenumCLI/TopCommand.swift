import ArgumentParser
import Foundation
import PlenumClient
import PlenumCluster

/// `plenum top`: the cluster at a glance, redrawn every second from each
/// node's metrics (SPEC §10.9 "Metrics"): per node ops/s, latency p50/p99
/// over the last interval, memory, objects, clients, peers up and peer
/// messages per second. `q` quits. A node that stops answering shows DOWN
/// and comes back when it answers again.
struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "top", abstract: "The cluster at a glance, refreshed every second (q quits).")
    @Option(help: "Cluster file (default: the local cluster's).") var cluster: String?
    @Option(help: "Seconds between refreshes.") var interval: Double = 1
    @Option(help: "Draw this many frames, then exit (0: until q).") var frames = 0

    func run() throws {
        let path = cluster ?? LocalCluster.file(LocalCluster.defaultDir)
        guard FileManager.default.fileExists(atPath: path) else {
            throw CLIError("no cluster file at \(path): start one with `plenum cluster up`, or pass --cluster FILE")
        }
        guard interval >= 0.1 else { throw ValidationError("--interval must be at least 0.1") }
        let config = try loadCluster(path)
        let terminal = RawTerminal()
        defer { terminal.restore() }
        var top = TopModel(nodes: config.nodes.map { ($0.id, $0.socket) })
        var drawn = 0
        while true {
            top.refresh(now: Date())
            let screen = top.render(file: path, at: Date())
            RawTerminal.write("\u{1B}[H\u{1B}[2J" + screen)
            drawn += 1
            if frames > 0, drawn >= frames { return }
            if terminal.waitForQuit(seconds: interval) { return }
        }
    }
}

/// The numbers behind the screen: per node, the last scrape and the one before.
struct TopModel {
    struct Node {
        var id: NodeID
        var socket: String
        var client: PlenumClient?
        var samples: [String: Double] = [:]
        var previous: [String: Double] = [:]
        var at: Date?
        var previousAt: Date?
        var error: String?
    }
    var nodes: [Node]

    init(nodes: [(NodeID, String)]) { self.nodes = nodes.map { Node(id: $0.0, socket: $0.1) } }

    mutating func refresh(now: Date) {
        for i in nodes.indices {
            do {
                if nodes[i].client == nil { nodes[i].client = try PlenumClient(socketPath: nodes[i].socket, prefault: false) }
                let text = try nodes[i].client!.metrics()
                nodes[i].previous = nodes[i].samples
                nodes[i].previousAt = nodes[i].at
                nodes[i].samples = MetricsText.samples(text)
                nodes[i].at = now
                nodes[i].error = nil
            } catch {
                // A node that died: its next life starts from zero.
                nodes[i].client = nil
                nodes[i].samples = [:]
                nodes[i].previous = [:]
                nodes[i].at = nil
                nodes[i].previousAt = nil
                nodes[i].error = "\(error)"
            }
        }
    }

    /// Sum over the samples of a family (all label sets), now minus before.
    static func delta(_ n: Node, _ family: String, where keep: (String) -> Bool = { _ in true }) -> Double {
        func sum(_ s: [String: Double]) -> Double { s.filter { ($0.key == family || $0.key.hasPrefix(family + "{")) && keep($0.key) }.values.reduce(0, +) }
        return sum(n.samples) - sum(n.previous)
    }

    /// The latency quantile over the last interval, as a bucket's upper bound.
    static func quantile(_ n: Node, _ q: Double) -> String {
        var perBound: [String: Double] = [:]
        for (key, v) in n.samples where key.hasPrefix("plenum_operation_duration_seconds_bucket{") {
            guard let r = key.range(of: "le=\"") else { continue }
            let le = String(key[r.upperBound...].prefix { $0 != "\"" })
            perBound[le, default: 0] += v - (n.previous[key] ?? 0)
        }
        let bounds = perBound.keys.sorted { (Double($0) ?? .infinity) < (Double($1) ?? .infinity) }
        guard let total = bounds.last.flatMap({ perBound[$0] }), total > 0 else { return "-" }
        for b in bounds where perBound[b]! >= q * total {
            guard b != "+Inf", let s = Double(b), s.isFinite else { return "> 1 s" }
            return s < 1e-3 ? "≤\(Int((s * 1e6).rounded())) µs" : s < 1 ? "≤\(Int((s * 1e3).rounded())) ms" : "≤\(Int(s)) s"
        }
        return "-"
    }

    static func bytes(_ v: Double) -> String {
        let gib = Double(1 << 30), mib = Double(1 << 20)
        return v >= gib ? String(format: "%.1f GiB", v / gib) : v >= mib ? String(format: "%.1f MiB", v / mib) : String(format: "%.0f KiB", v / 1024)
    }

    func render(file: String, at now: Date) -> String {
        let clock = ISO8601DateFormatter.string(from: now, timeZone: .current, formatOptions: [.withTime, .withColonSeparatorInTime])
        var s = "plenum top — \(file) — \(clock) — q quits\n\n"
        s += "node  state   ops/s     p50       p99       memory used / capacity    objects  clients  peers up  peer msgs/s out/in\n"
        for n in nodes {
            let id = String(n.id).padding(toLength: 6, withPad: " ", startingAt: 0)
            guard n.error == nil, n.at != nil else {
                s += "\(id)DOWN    \(n.error.map { String($0.prefix(90)) } ?? "")\n"
                continue
            }
            let seconds = n.previousAt.map { n.at!.timeIntervalSince($0) } ?? 0
            func rate(_ family: String) -> String {
                seconds > 0 ? String(Int((Self.delta(n, family) / seconds).rounded())) : "-"
            }
            let up = n.samples.filter { $0.key.hasPrefix("plenum_peer_up{") }
            let g = { (k: String) in n.samples["\(k){node=\"\(n.id)\"}"] ?? 0 }
            let cols = [
                "up", rate("plenum_operations_total"), Self.quantile(n, 0.5), Self.quantile(n, 0.99),
                "\(Self.bytes(g("plenum_memory_used_bytes"))) / \(Self.bytes(g("plenum_memory_capacity_bytes")))",
                String(Int(g("plenum_objects"))), String(Int(g("plenum_clients"))),
                "\(up.values.filter { $0 == 1 }.count)/\(up.count)",
                "\(rate("plenum_peer_messages_sent_total"))/\(rate("plenum_peer_messages_received_total"))",
            ]
            let widths = [8, 10, 10, 10, 26, 9, 9, 10, 0]
            s += id + zip(cols, widths).map { $0.1 > 0 ? $0.0.padding(toLength: $0.1, withPad: " ", startingAt: 0) : $0.0 }.joined() + "\n"
        }
        return s
    }
}

/// The terminal in non-canonical, no-echo mode while `top` runs (restored
/// on exit); without a terminal, `top` just sleeps between frames.
final class RawTerminal {
    private var saved = termios()
    private let isTTY = isatty(STDIN_FILENO) == 1

    init() {
        guard isTTY else { return }
        tcgetattr(STDIN_FILENO, &saved)
        var raw = saved
        // No line editing, no echo, and Ctrl-C is a key (it quits, and the
        // terminal is given back) rather than a signal that would not.
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG)
        tcsetattr(STDIN_FILENO, TCSANOW, &raw)
        Self.write("\u{1B}[?25l")     // hide the cursor
    }

    func restore() {
        guard isTTY else { return }
        tcsetattr(STDIN_FILENO, TCSANOW, &saved)
        Self.write("\u{1B}[?25h")
    }

    /// Straight to standard output (a frame at once, no buffering).
    static func write(_ s: String) {
        let b = Array(s.utf8)
        var done = 0
        while done < b.count {
            let n = b.withUnsafeBytes { Glibc.write(STDOUT_FILENO, $0.baseAddress! + done, b.count - done) }
            if n <= 0 { return }
            done += n
        }
    }

    /// Waits up to `seconds`; true if `q`, Ctrl-C or Ctrl-D was typed, or
    /// the input ended.
    func waitForQuit(seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return false }
            var p = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, Int32(max(1, left * 1000)))
            if ready < 0 { if errno == EINTR { continue } else { usleep(UInt32(min(left, 1) * 1_000_000)); continue } }
            guard ready > 0 else { continue }
            var c: UInt8 = 0
            let n = read(STDIN_FILENO, &c, 1)
            if n <= 0 || c == UInt8(ascii: "q") || c == UInt8(ascii: "Q") || c == 3 || c == 4 { return true }
        }
    }
}
