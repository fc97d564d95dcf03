import ArgumentParser
import Glibc
import Logging
import PlenumDaemon

/// `plasma-store-server` with Plasma 11's flags (gflags syntax: `-m 100`,
/// `-m=100`, `--m=100`), serving Plasma's protocol on `-s` and Plenum's on
/// `<-s>.plenum` (SPEC §11.7).
struct PlasmaStoreServer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plasma-store-server",
        abstract: "Run a store that Plasma 11 clients (pyarrow.plasma, libplasma) use unchanged.",
        discussion: """
        Flags as Plasma's server takes them:
          -m BYTES   memory for objects (required)
          -s PATH    Plasma socket (required); Plenum clients connect at PATH.plenum
          -d DIR     directory of the memory file (default /dev/shm)
          -e hashtable://NAME   keep evicted objects in this process and bring them back on get
          -h         huge pages: transparent huge pages over the memory file (MADV_HUGEPAGE)
        """)

    @Argument(parsing: .captureForPassthrough) var flags: [String] = []

    func run() throws { Self.main(flags) }

    static func fail(_ message: String) -> Never {
        FileHandleStderr.write("plasma-store-server (plenum): \(message)\n")
        Glibc.exit(2)
    }

    /// Parses gflags-style arguments and runs the store until a signal.
    static func main(_ args: [String]) -> Never {
        var values: [String: String] = [:]
        var i = 0
        while i < args.count {
            let arg = args[i]
            guard arg.hasPrefix("-"), arg.count > 1 else { fail("unexpected argument '\(arg)'; flags are -m -s -d -e -h") }
            var name = String(arg.drop(while: { $0 == "-" }))
            var value: String?
            if let eq = name.firstIndex(of: "=") {
                value = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            switch name {
            case "m", "s", "d", "e":
                if value == nil {
                    guard i + 1 < args.count else { fail("-\(name) needs a value") }
                    i += 1
                    value = args[i]
                }
                values[name] = value
            case "h":
                guard let v = value else { values["h"] = "true"; break }
                guard ["true", "false", "1", "0"].contains(v) else { fail("-h takes no value, or true/false") }
                values["h"] = v == "true" || v == "1" ? "true" : nil
            case "help", "helpshort":
                print(configuration.discussion)
                Glibc.exit(0)
            default:
                fail("flag -\(name) is not supported; this store takes -m, -s, -d, -e and -h")
            }
            i += 1
        }
        guard let m = values["m"], let memory = Int(m), memory > 0 else { fail("-m BYTES is required (a positive number of bytes)") }
        guard let socket = values["s"], !socket.isEmpty else { fail("-s PATH is required (the Plasma socket)") }
        var o = StoreDaemon.Options(socketPath: socket + ".plenum", memory: memory)
        o.plasmaSocketPath = socket
        o.plasmaCapacity = memory
        o.regionPath = "\(values["d"] ?? "/dev/shm")/plenum-plasma-\(getuid())-\(getpid()).region"
        // As Plasma's own files: gone from the directory once mapped, so a
        // server killed with SIGKILL (pyarrow's tests do) leaves nothing.
        o.unlinkRegionAtStart = true
        o.hugePages = values["h"] != nil
        if let e = values["e"], !e.isEmpty {
            guard e.hasPrefix("hashtable://") else {
                fail("external store '\(e)' is not supported; only hashtable:// (objects kept in this process) is")
            }
            // Evicted objects are kept up to four times the store's memory.
            o.spillLimit = memory > Int.max / 4 ? Int.max : 4 * memory
        }
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = .warning
            return h
        }
        do {
            let daemon = try StoreDaemon(o, logger: Logger(label: "plasma-store-server"))
            try daemon.run()
        } catch {
            fail("\(error)")
        }
        Glibc.exit(0)
    }
}
