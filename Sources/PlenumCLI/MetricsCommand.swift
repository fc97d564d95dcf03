import ArgumentParser
import Foundation
import PlenumClient
import PlenumCluster

/// `plenum metrics`: every node's metrics (SPEC §10.9 "Metrics") as one
/// Prometheus text exposition — each family's HELP and TYPE once, then its
/// samples from every node (they differ by the `node` label).
struct MetricsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "metrics", abstract: "Every node's counters and latency histograms, in Prometheus's text format.")
    @Option(help: "Cluster file (default: the local cluster's).") var cluster: String?
    @Option(help: "Ask only the store on this socket.") var socket: String?

    func run() throws {
        var sockets: [String] = []
        if let socket { sockets = [socket] } else {
            let path = cluster ?? LocalCluster.file(LocalCluster.defaultDir)
            guard FileManager.default.fileExists(atPath: path) else {
                throw CLIError("no cluster file at \(path): start one with `plenum cluster up`, or pass --cluster FILE or --socket PATH")
            }
            sockets = try loadCluster(path).nodes.map(\.socket)
        }
        var texts: [String] = []
        var down: [String] = []
        for s in sockets {
            do { texts.append(try PlenumClient(socketPath: s, prefault: false).metrics()) } catch { down.append("\(s): \(error)") }
        }
        print(Self.merge(texts), terminator: "")
        for d in down { FileHandleStderr.write("plenum metrics: no answer from \(d)\n") }
        if !down.isEmpty && texts.isEmpty { throw ExitCode(1) }
    }

    /// One exposition from several: families in first-seen order, each
    /// with its HELP and TYPE once and every text's samples of it.
    static func merge(_ texts: [String]) -> String {
        var order: [String] = []
        var header: [String: [String]] = [:]
        var samples: [String: [String]] = [:]
        for text in texts {
            var family = ""
            for line in text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) {
                if line.hasPrefix("# ") {
                    let parts = line.split(separator: " ", maxSplits: 3)
                    guard parts.count >= 3 else { continue }
                    family = String(parts[2])
                    if header[family] == nil { order.append(family); header[family] = [] }
                    if !header[family]!.contains(where: { $0.hasPrefix("# \(parts[1]) ") }) { header[family]!.append(line) }
                } else {
                    if header[family] == nil { order.append(family); header[family] = [] }
                    samples[family, default: []].append(line)
                }
            }
        }
        return order.map { f in (header[f]! + (samples[f] ?? [])).joined(separator: "\n") + "\n" }.joined()
    }
}
