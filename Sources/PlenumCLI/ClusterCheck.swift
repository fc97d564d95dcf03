import ArgumentParser
import Foundation
import PlenumCluster

/// `plenum cluster check FILE`: validates a cluster file as `plenum store
/// --cluster` does (the same parser, the same messages) and prints what the
/// stores will build from it (SPEC §10.1–§10.4): each node's region and what
/// it holds, which ring lives in whose memory, relays, reach, and the files
/// each node must be able to open. `--dot` writes the plan as a Graphviz graph.
struct ClusterCheck: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check", abstract: "Validate a cluster file and print the plan the stores will build (SPEC §10.1).")
    @Argument(help: "The cluster file.") var file: String
    @Option(help: "Also write the plan as a Graphviz graph to this file ('-': standard output).") var dot: String?
    @Flag(help: "The plan as JSON.") var json = false

    func run() throws {
        let config = try loadCluster(file)
        let plan: RingPlan
        do { plan = try RingPlan(config) } catch { throw CLIError("\(file): \(error)") }
        let p = ClusterPlanReport(config: config, plan: plan)
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: p.json, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self))
        } else {
            print(p.text(file: file), terminator: "")
        }
        if let dot {
            if dot == "-" { print(p.dot, terminator: "") } else { try p.dot.write(toFile: dot, atomically: true, encoding: .utf8) }
        }
    }
}

/// The plan of a valid cluster file, as text, JSON and Graphviz.
struct ClusterPlanReport {
    let config: ClusterConfig
    let plan: RingPlan

    var ids: [NodeID] { config.nodes.map(\.id).sorted() }
    func region(_ n: NodeID) -> RegionPlan { RegionPlan(config: config, plan: plan, node: n) }
    /// Rings hosted in node h's memory, in block order (SPEC §10.3).
    func hosted(in h: NodeID) -> [[NodeID]] { ids.flatMap { p in ids.compactMap { c in plan.site(from: p, to: c)?.host == h ? [p, c] : nil } }
        .sorted { plan.site(from: $0[0], to: $0[1])!.index < plan.site(from: $1[0], to: $1[1])!.index } }
    var relays: [(p: NodeID, c: NodeID, via: NodeID)] {
        ids.flatMap { p in ids.compactMap { c in plan.relay(from: p, to: c).map { (p, c, $0) } } }
    }
    func reach(_ a: NodeID, _ b: NodeID) -> String {
        switch (config.node(a)!.reach[b] != nil, config.node(b)!.reach[a] != nil) {
        case (true, true): return "both ways"
        case (true, false): return "one way (\(a) maps \(b))"
        case (false, true): return "one way (\(b) maps \(a))"
        case (false, false): return "none"
        }
    }

    func text(file: String) -> String {
        var s = "\(file): valid; \(config.nodes.count) node(s), line \(config.lineSize) B, rings of \(config.ringSlots) × \(config.ringSlotSize) B, "
        s += "transport \(config.transport.rawValue), wait \(config.wait.rawValue), bells \(config.bells ? "on" : "off"), "
        s += "directory index \(config.directoryIndex == 0 || config.transport != .rings ? "none" : "\(config.directoryIndex) entries")\n"
        for id in ids {
            let n = config.node(id)!, r = region(id)
            s += "\nnode \(id)\n"
            s += "  region   \(n.region): \(r.total) B = 4096 header + \(r.objects) objects + \(r.links) peer links (\(r.rings) ring(s))"
            s += r.index > 0 ? " + \(r.index) directory index (\(r.indexLayout!.capacity) entries) + \(r.view) cluster view\n" : "\n"
            s += "  waits    \(config.waitMode(of: id).rawValue)\(n.cpu.map { ", pinned to cpu \($0)" } ?? "")\(n.numaNode.map { ", memory on NUMA node \($0)" } ?? "")\n"
            let rings = hosted(in: id).map { "\($0[0])→\($0[1])" }
            s += "  hosts    \(rings.isEmpty ? "no ring" : "rings " + rings.joined(separator: ", "))\n"
            s += "  opens    \(n.region) (creates it), \(n.socket) and \(n.bell) (binds them)"
            for (peer, path) in n.reach.sorted(by: { $0.key < $1.key }) { s += ", \(path) (maps node \(peer)'s region)" }
            if let g = n.grpc { s += ", listens on \(g)" }
            s += "\n"
        }
        s += "\nreach\n"
        for a in ids { for b in ids where a < b { s += "  \(a) ⇄ \(b): \(reach(a, b))\n" } }
        let r = relays
        s += r.isEmpty ? "relays   none\n" : "relays\n" + r.map { "  \($0.p)→\($0.c) through node \($0.via)\n" }.joined()
        return s
    }

    var json: [String: Any] {
        [
            "valid": true,
            "line_size": config.lineSize, "ring_slots": config.ringSlots, "ring_slot_size": config.ringSlotSize,
            "transport": config.transport.rawValue, "bells": config.bells,
            "directory_index": config.transport == .rings ? config.directoryIndex : 0,
            "nodes": ids.map { id -> [String: Any] in
                let n = config.node(id)!, r = region(id)
                var d: [String: Any] = [
                    "id": Int(id), "region": n.region, "socket": n.socket, "wait": config.waitMode(of: id).rawValue,
                    "region_bytes": ["total": r.total, "header": RegionPlan.headerBytes, "objects": r.objects, "peer_links": r.links, "directory_index": r.index, "cluster_view": r.view],
                    "rings_hosted": hosted(in: id).map { ["producer": Int($0[0]), "consumer": Int($0[1])] },
                    "maps": n.reach.sorted(by: { $0.key < $1.key }).map { ["node": Int($0.key), "path": $0.value] },
                ]
                if let c = n.cpu { d["cpu"] = c }
                if let numa = n.numaNode { d["numa_node"] = numa }
                return d
            },
            "relays": relays.map { ["producer": Int($0.p), "consumer": Int($0.c), "via": Int($0.via)] },
        ]
    }

    /// Nodes as boxes; a solid edge p→c per ring, labelled with the memory
    /// it lives in; a dashed edge a→b per reach (a maps b); relays dotted.
    var dot: String {
        var s = "digraph plenum {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n"
        for id in ids {
            let r = region(id)
            s += "  n\(id) [label=\"node \(id)\\n\(r.total) B region\\n\(r.rings) ring(s) hosted\"];\n"
        }
        for p in ids { for c in ids where p != c {
            if let site = plan.site(from: p, to: c) { s += "  n\(p) -> n\(c) [label=\"ring in \(site.host)\"];\n" }
        } }
        for a in ids { for b in config.node(a)!.reach.keys.sorted() { s += "  n\(a) -> n\(b) [style=dashed, color=gray, label=\"maps\"];\n" } }
        for r in relays { s += "  n\(r.p) -> n\(r.c) [style=dotted, label=\"relay via \(r.via)\"];\n" }
        return s + "}\n"
    }
}
