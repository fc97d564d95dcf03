import ArgumentParser
import Glibc
import Logging
import PlenumMemory

/// The `plenum` command line, as a library so that other executables (the
/// gRPC baseline's `plenum-grpc`) run the same commands.
public enum PlenumCLI {
    /// `plenum …`, or Plasma's `plasma-store-server …` when started under
    /// that name (a symlink or copy), so scripts that launch Plasma's server
    /// run Plenum unchanged (SPEC §11.7).
    public static func main() -> Never {
        let name = CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "") } ?? ""
        if name == "plasma-store-server" { PlasmaStoreServer.main(Array(CommandLine.arguments.dropFirst())) }
        if CommandLine.arguments.dropFirst().first == "sim" { SimCommand.deterministicHashing() }
        Plenum.main()
        exit(0)
    }
}

struct Plenum: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plenum",
        abstract: "A distributed in-memory object store over non-coherent disaggregated memory.",
        discussion: """
        Stores coordinate through per-pair ring buffers placed in shared memory,
        with writer-owned commit words and cache-line flushes after every post.
        See README.md and SPEC.md.
        """,
        subcommands: [StoreCommand.self, ClusterCommand.self, StatusCommand.self, MetricsCommand.self, TopCommand.self, BarrierCommand.self, ClientWorkload.self, LookupLoop.self, PutCommand.self, GetCommand.self, ListCommand.self, RemoveCommand.self, StatCommand.self, PlasmaStoreServer.self, RegionCommand.self, RingCommand.self, BenchCommand.self, DemoCommand.self, SimCommand.self, FuzzCommand.self]
    )
}

/// Options every command that logs shares. Quiet by default.
struct LogOptions: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Log progress to stderr.")
    var verbose = false

    func bootstrap() -> Logger {
        let level: Logger.Level = verbose ? .info : .warning
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        return Logger(label: "plenum")
    }
}

/// Parses byte sizes such as 4096, 64K, 16M, 1G (binary units).
struct ByteSize: ExpressibleByArgument {
    let bytes: Int
    init?(argument: String) {
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        var text = argument.uppercased()
        if text.hasSuffix("IB") { text.removeLast(2) } else if text.hasSuffix("B") { text.removeLast() }
        var scale = 1
        if let last = text.last, let u = units[last] { scale = u; text.removeLast() }
        guard let n = Int(text), n > 0, n <= Int.max / scale else { return nil }
        bytes = n * scale
    }
}

extension LineSize: ExpressibleByArgument {
    public init?(argument: String) {
        guard let n = Int(argument), let l = try? LineSize(n) else { return nil }
        self = l
    }
    public static var allValueStrings: [String] { LineSize.allowed.map(String.init) }
}

enum FileHandleStderr {
    static func write(_ s: String) {
        var s = s
        s.withUTF8 { b in
            var done = 0
            while done < b.count {
                let n = Glibc.write(2, b.baseAddress! + done, b.count - done)
                if n <= 0 { return }
                done += n
            }
        }
    }
}
