import ArgumentParser
import CPlenumShim
import Foundation
import Glibc
import PlenumClient
import PlenumCluster
import PlenumStore
import PlenumWire

/// Reads and validates a cluster file.
func loadCluster(_ path: String) throws -> ClusterConfig {
    guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read cluster file \(path)") }
    do { return try ClusterConfig.parse(String(decoding: data, as: UTF8.self)) } catch { throw CLIError("\(path): \(error)") }
}

extension PeerTransport: ExpressibleByArgument {}

/// The one-host default: N nodes, regions in /dev/shm, the rest in a directory.
enum LocalCluster {
    static var defaultDir: String { "/tmp/plenum-cluster-\(getuid())" }
    static func file(_ dir: String) -> String { dir + "/cluster.toml" }
    static func pidFile(_ dir: String, _ n: NodeID) -> String { dir + "/node\(n).pid" }
    static func logFile(_ dir: String, _ n: NodeID) -> String { dir + "/node\(n).log" }

    /// The region-name tag of the local cluster kept in `dir`:
    /// `cluster-<uid>-<8 hex digits of the directory's canonical path>`,
    /// so clusters in different directories never share a region file.
    static func tag(forDir dir: String) -> String {
        let path = URL(fileURLWithPath: dir).standardizedFileURL.resolvingSymlinksInPath().path
        var h: UInt32 = 0x811C_9DC5   // FNV-1a
        for b in path.utf8 { h = (h ^ UInt32(b)) &* 0x0100_0193 }
        let hex = String(h, radix: 16)
        return "cluster-\(getuid())-" + String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// Node n's pid from its pid file, if that process still runs and is
    /// this cluster's node n (`store --cluster FILE --node n` on its command
    /// line: a pid reused by another process is never signalled). A node
    /// that exited but was not reaped yet (a zombie of `cluster up`) does
    /// not run.
    static func pid(_ dir: String, _ n: NodeID, file: String? = nil) -> pid_t? {
        let file = file ?? Self.file(dir)
        guard let d = FileManager.default.contents(atPath: pidFile(dir, n)),
              let p = pid_t(String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)), p > 0,
              kill(p, 0) == 0 else { return nil }
        guard let stat = FileManager.default.contents(atPath: "/proc/\(p)/stat"),
              let close = stat.lastIndex(of: UInt8(ascii: ")")), close + 2 < stat.count, stat[close + 2] != UInt8(ascii: "Z"),
              let cmd = FileManager.default.contents(atPath: "/proc/\(p)/cmdline") else { return nil }
        let args = cmd.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        func after(_ flag: String) -> String? { args.firstIndex(of: flag).flatMap { $0 + 1 < args.count ? args[$0 + 1] : nil } }
        guard args.contains("store"), after("--node") == "\(n)", let f = after("--cluster"),
              URL(fileURLWithPath: f).standardizedFileURL.path == URL(fileURLWithPath: file).standardizedFileURL.path else { return nil }
        return p
    }

    /// Removes a region file unless a running store holds its lock (SPEC
    /// §9.4: a store holds flock(LOCK_EX) on its region for its life).
    static func unlinkUnlessLocked(_ path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 { unlink(path) }
    }

    /// The last non-empty line of node n's log (why it stopped).
    static func lastLogLine(_ dir: String, _ n: NodeID) -> String {
        let text = String(decoding: FileManager.default.contents(atPath: logFile(dir, n)) ?? Data(), as: UTF8.self)
        return text.split(separator: "\n").last { !$0.allSatisfy(\.isWhitespace) }.map(String.init) ?? "(its log is empty)"
    }

    /// Starts `plenum store --cluster FILE --node n` detached (own session),
    /// output to its log; returns its pid.
    static func spawn(file: String, node n: NodeID, dir: String, verbose: Bool) throws -> pid_t {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var args = [exe, "store", "--cluster", file, "--node", "\(n)"]
        if verbose { args.append("-v") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logFile(dir, n), O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else is inherited: a descriptor of whoever ran `cluster up`
        // (Foundation's Process watches a socket its child holds to learn of
        // its exit) would otherwise live on in the nodes, and that caller
        // would wait for `cluster up` as long as the cluster runs.
        _ = plenum_spawn_close_from(&actions, 3)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, 0x80 /* POSIX_SPAWN_SETSID */)
        var pid: pid_t = 0
        let cargs = args.map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        let rc = posix_spawn(&pid, exe, &actions, &attr, cargs, environ)
        guard rc == 0 else { throw CLIError("cannot start node \(n): \(String(cString: strerror(rc)))") }
        try "\(pid)\n".write(toFile: pidFile(dir, n), atomically: true, encoding: .utf8)
        return pid
    }
}

extension LocalCluster {
    /// Waits until every node answers and sees every other alive; fails as
    /// soon as a node has exited, naming it and quoting its log's last line.
    static func waitReady(_ config: ClusterConfig, dir: String, file: String? = nil, seconds: Int) throws {
        let deadline = Date().addingTimeInterval(TimeInterval(seconds))
        var ready = Set<NodeID>()
        while ready.count < config.nodes.count {
            for n in config.nodes where !ready.contains(n.id) {
                if let why = exitedDuringStart(dir, n.id, file: file) {
                    throw CLIError("node \(n.id) exited during start\(why): \(lastLogLine(dir, n.id)) — log \(logFile(dir, n.id))")
                }
                guard let c = try? PlenumClient(socketPath: n.socket, rings: false, prefault: false), let json = try? c.clusterStatus(),
                      let doc = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
                      let peers = doc["peers"] as? [[String: Any]] else { continue }
                if peers.allSatisfy({ $0["alive"] as? Bool == true }) { ready.insert(n.id) }
            }
            if ready.count == config.nodes.count { break }
            guard Date() < deadline else {
                throw CLIError("nodes \(config.nodes.map(\.id).filter { !ready.contains($0) }) did not see every peer within \(seconds) s; see the logs in \(dir)")
            }
            usleep(50_000)
        }
    }

    /// Why node n, started by this process, is no longer running ("" if
    /// the reason is unknown), or nil while it runs. Judged by the process
    /// itself, not by `pid`'s command-line check: right after posix_spawn
    /// returns, the child's new image may not have its arguments in place
    /// yet (the kernel releases a vfork parent before it lays out the new
    /// stack), and an empty /proc/<pid>/cmdline once failed a start whose
    /// node was fine (CI, `bench cluster`, "node 3 exited during start: (its
    /// log is empty)").
    static func exitedDuringStart(_ dir: String, _ n: NodeID, file: String?) -> String? {
        guard let d = FileManager.default.contents(atPath: pidFile(dir, n)),
              let p = pid_t(String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)), p > 0 else { return "" }
        var status: Int32 = 0
        switch waitpid(p, &status, WNOHANG) {
        case p:   // it exited (and is reaped now): this process started it
            return status & 0x7F == 0 ? " (exit status \((status >> 8) & 0xFF))" : " (signal \(status & 0x7F))"
        case 0:   // this process's child, still running
            return nil
        default:  // not this process's child (a pid file of another `cluster up`)
            return pid(dir, n, file: file) == nil ? "" : nil
        }
    }

    /// SIGTERM every node (SIGKILL after 5 s); removes pid files, sockets
    /// and, if asked, region files. Returns how many were running.
    @discardableResult
    static func stop(_ config: ClusterConfig, dir: String, file: String? = nil, removeRegions: Bool) -> Int {
        var stopped = 0
        for n in config.nodes {
            guard let p = pid(dir, n.id, file: file) else { continue }
            kill(p, SIGTERM)
            var waited = 0, status: Int32 = 0
            while pid(dir, n.id, file: file) != nil, waited < 100 { usleep(50_000); waited += 1 }
            if pid(dir, n.id, file: file) != nil { kill(p, SIGKILL) }
            _ = waitpid(p, &status, WNOHANG)   // reaps it if this process started it
            stopped += 1
        }
        for n in config.nodes where pid(dir, n.id, file: file) == nil {
            // A node that would not stop keeps its files; so does a file a
            // running store holds (a socket someone listens on, a locked
            // region): `down` never removes another store's files.
            unlink(pidFile(dir, n.id))
            if !UnixSocket.acceptsConnections(n.socket) { unlink(n.socket); unlink(n.bell) }
            if removeRegions { unlinkUnlessLocked(n.region) }
        }
        return stopped
    }

    /// Writes the local default file into `dir` and starts every node.
    static func start(nodes: Int, memory: Int, dir: String, tag: String, deadAfterMs: Int = 5000, verbose: Bool = false,
                      transport: PeerTransport = .rings, grpcPortBase: Int = 7400,
                      configure: (inout ClusterConfig) -> Void = { _ in }) throws -> ClusterConfig {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var config = ClusterConfig.local(nodes: nodes, memory: memory, dir: dir, tag: tag, transport: transport, grpcPortBase: grpcPortBase)
        config.deadAfterMillis = deadAfterMs
        configure(&config)
        do { try config.validate() } catch { throw CLIError("\(error)") }
        try config.toml().write(toFile: file(dir), atomically: true, encoding: .utf8)
        for n in config.nodes { _ = try spawn(file: file(dir), node: n.id, dir: dir, verbose: verbose) }
        return config
    }
}

struct ClusterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cluster", abstract: "Start or stop a cluster of stores on this host; check a cluster file.",
                                                    subcommands: [Up.self, Down.self, ClusterCheck.self])

    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Start every node (default: 3 local nodes in /dev/shm) and wait until they see each other.")
        @Option(help: "Number of local nodes (ignored with --file).") var nodes = 3
        @Option(help: "Object memory per node.") var memory = ByteSize(argument: "256M")!
        @Option(help: "Directory for the cluster file, sockets, pid files and logs.") var dir = LocalCluster.defaultDir
        @Option(help: "A cluster file: start its nodes instead of the local default.") var file: String?
        @Option(help: "Declare a silent node dead after this long (ms).") var deadAfterMs = 1000
        @Option(help: "What carries peer messages (ignored with --file): rings, or grpc-unary / grpc-stream with `plenum-grpc` (SPEC §10.11).")
        var transport = PeerTransport.rings
        @Option(help: "With a gRPC transport, node i listens on 127.0.0.1:BASE+i.") var grpcPortBase = 7400
        @Option(help: "Seconds to wait for every node to see every other.") var wait = 20
        @Flag(name: .shortAndLong, help: "Nodes log their progress.") var verbose = false

        func run() throws {
            guard nodes >= 1, nodes <= 64 else { throw ValidationError("--nodes must be 1…64") }
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let path: String
            var config: ClusterConfig
            if let file {
                path = file
                config = try loadCluster(file)
            } else {
                path = LocalCluster.file(dir)
                config = ClusterConfig.local(nodes: nodes, memory: memory.bytes, dir: dir, tag: LocalCluster.tag(forDir: dir), transport: transport,
                                             grpcPortBase: grpcPortBase)
                config.deadAfterMillis = deadAfterMs
                do { try config.validate() } catch { throw CLIError("\(error)") }
                try config.toml().write(toFile: path, atomically: true, encoding: .utf8)
            }
            for n in config.nodes {
                if let p = LocalCluster.pid(dir, n.id, file: path) { throw CLIError("node \(n.id) is already running (pid \(p)); `plenum cluster down` first") }
            }
            do {
                for n in config.nodes {
                    let pid = try LocalCluster.spawn(file: path, node: n.id, dir: dir, verbose: verbose)
                    FileHandleStderr.write("node \(n.id): pid \(pid), socket \(n.socket), log \(LocalCluster.logFile(dir, n.id))\n")
                }
                try LocalCluster.waitReady(config, dir: dir, file: path, seconds: wait)
            } catch {
                // Nothing half-started stays behind: the nodes that did start stop.
                LocalCluster.stop(config, dir: dir, file: path, removeRegions: file == nil)
                throw error
            }
            print("cluster up: \(config.nodes.count) node(s); cluster file \(path)")
            for n in config.nodes { print("  node \(n.id)  socket \(n.socket)  region \(n.region)  memory \(n.memory) B") }
        }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the nodes started by `cluster up` (SIGTERM, then SIGKILL after 5 s).")
        @Option(help: "The directory `cluster up` used.") var dir = LocalCluster.defaultDir
        @Option(help: "The cluster file (default: DIR/cluster.toml).") var file: String?

        func run() throws {
            let path = file ?? LocalCluster.file(dir)
            guard FileManager.default.fileExists(atPath: path) else { print("no cluster at \(dir)"); return }
            let config = try loadCluster(path)
            let stopped = LocalCluster.stop(config, dir: dir, file: path, removeRegions: file == nil)
            print("cluster down: \(stopped) node(s) stopped")
        }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Every node of the cluster: liveness, memory, rings, references.")
    @Option(help: "Cluster file (default: the local cluster's).") var cluster: String?
    @Option(help: "Ask only the store on this socket.") var socket: String?
    @Flag var json = false

    func run() throws {
        var sockets: [(NodeID?, String)] = []
        if let socket { sockets = [(nil, socket)] } else {
            let path = cluster ?? LocalCluster.file(LocalCluster.defaultDir)
            guard FileManager.default.fileExists(atPath: path) else {
                throw CLIError("no cluster file at \(path): start one with `plenum cluster up`, or pass --cluster FILE or --socket PATH")
            }
            sockets = try loadCluster(path).nodes.map { ($0.id, $0.socket) }
        }
        var docs: [[String: Any]] = []
        for (id, s) in sockets {
            do {
                let text = try PlenumClient(socketPath: s, prefault: false).clusterStatus()
                docs.append((try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:])
            } catch {
                docs.append(["node": id.map { Int($0) } ?? -1, "socket": s, "reachable": false, "error": "\(error)"])
            }
        }
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: ["nodes": docs], options: [.sortedKeys]), as: UTF8.self))
            return
        }
        for d in docs {
            guard d["reachable"] as? Bool != false else {
                print("node \(d["node"] ?? "?")  DOWN  (\(d["socket"] ?? ""): \(d["error"] ?? ""))")
                continue
            }
            let m = d["memory"] as? [String: Any] ?? [:]
            print("node \(d["node"] ?? "?")  pid \(d["pid"] ?? "?")  socket \(d["socket"] ?? "")  used \(m["used"] ?? 0)/\(m["capacity"] ?? 0) B  objects \(m["objects"] ?? 0)  fragmentation \(m["fragmentation"] ?? 0)  clients \(d["clients"] ?? 0)")
            for p in d["peers"] as? [[String: Any]] ?? [] {
                if let via = p["relayed_via"] {
                    print("  peer \(p["node"] ?? "?")  \(p["state"] ?? "?")  relayed via node \(via)  hello \(p["heartbeat_age_ms"] ?? -1) ms ago  refs held \(p["references_held"] ?? 0) lent \(p["references_lent"] ?? 0)  sent \(p["relayed_sent"] ?? 0) received \(p["relayed_received"] ?? 0)")
                    continue
                }
                let o = p["ring_out"] as? [String: Any] ?? [:], i = p["ring_in"] as? [String: Any] ?? [:]
                print("  peer \(p["node"] ?? "?")  \(p["state"] ?? "?")  heartbeat \(p["heartbeat_age_ms"] ?? -1) ms  refs held \(p["references_held"] ?? 0) lent \(p["references_lent"] ?? 0)"
                      + "  out[\(o["pair"] ?? "") in node \(o["lives_in_node"] ?? "?") posted \(o["posted"] ?? 0) full \(o["full_events"] ?? 0) epoch \(o["epoch"] ?? 0)]"
                      + "  in[\(i["pair"] ?? "") in node \(i["lives_in_node"] ?? "?") consumed \(i["consumed"] ?? 0) corrupt \(i["corrupt_slots"] ?? 0) epoch \(i["epoch"] ?? 0)]")
                if let e = p["last_error"] as? String { print("    last error: \(e)") }
            }
        }
    }
}

struct BarrierCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "barrier", abstract: "Wait until every live node of the cluster reached the named barrier.")
    @Argument var name: String
    @OptionGroup var client: ClientOptions
    func run() throws {
        let id = try objectID(nil, name: name)
        let key = id.bytes.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        print("barrier \(name): \(try client.connect().barrier(key)) node(s) passed")
    }
}
