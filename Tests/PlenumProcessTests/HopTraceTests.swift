import Foundation
import PlenumClient
import PlenumCluster
import PlenumStore
import PlenumWire
import Testing

/// SPEC §9.2 0x17 and §8 "Hop trace": stores stamp the hops of an
/// operation, and `bench cluster --trace` turns them into a breakdown.
@Suite(.serialized) struct HopTraceTests {
    /// Without a directory index (SPEC §10.4), a lookup asks the home.
    @Test func aRemoteLookupLeavesItsFourHopsInTheTracesInTimeOrder() throws {
        let cluster = try TestCluster(nodes: 3, configure: { $0.directoryIndex = 0 })
        defer { cluster.stop() }
        let live = cluster.config.nodes.map(\.id)
        let id = (0..<10_000).lazy.map { cid($0, 0x77) }.first { Home.of($0, among: live) == 1 }!
        let c0 = try cluster.client(0)
        try cluster.client(2).put(id, data: [1])
        let controls = try live.map { try PlenumClient(socketPath: cluster.socket($0), rings: false) }
        for c in controls { _ = try c.hopTrace(on: true) }
        #expect(try c0.contains(id))
        let traces = try controls.map { try $0.hopTrace(on: false) }
        let n0 = traces[0].events, n1 = traces[1].events
        #expect(traces.allSatisfy { $0.dropped == 0 })
        let taken = try #require(n0.first { $0.what == .clientIn && $0.client == c0.hello.clientId && $0.kind == Frame.Kind.contains.rawValue })
        let asked = try #require(n0.first { $0.what == .peerOut && $0.kind == PeerMessage.Kind.lookup.rawValue && $0.peer == 1 })
        #expect(asked.key != 0, "a lookup carries a correlation")
        let arrived = try #require(n1.first { $0.what == .peerIn && $0.kind == PeerMessage.Kind.lookup.rawValue && $0.peer == 0 && $0.key == asked.key })
        let answered = try #require(n1.first { $0.what == .peerOut && $0.kind == PeerMessage.Kind.lookupReply.rawValue && $0.peer == 0 && $0.key == asked.key })
        let back = try #require(n0.first { $0.what == .peerIn && $0.kind == PeerMessage.Kind.lookupReply.rawValue && $0.peer == 1 && $0.key == asked.key })
        let replied = try #require(n0.first { $0.what == .clientOut && $0.client == c0.hello.clientId && $0.key == taken.key })
        #expect(replied.kind == Frame.Kind.containsReply.rawValue)
        let order = [taken, asked, arrived, answered, back, replied].map(\.nanos)
        #expect(order == order.sorted(), "one clock, in hop order: \(order)")
        // Off: nothing more is recorded.
        #expect(try c0.contains(id))
        #expect(try controls.allSatisfy { try $0.hopTrace(on: false).events.isEmpty })
    }

    @Test func benchClusterTraceBreaksEveryRemoteOperationIntoHops() throws {
        let r = try PlenumProcess.run(["bench", "cluster", "--operations", "5", "--rounds", "1", "--scaling", "2", "--bandwidth-mib", "1",
                                       "--trace", "40", "--json"], timeout: 600)
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try #require((try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any], "\(r.stdout)")
        let trace = try #require(doc["trace"] as? [[String: Any]])
        #expect(trace.map { $0["name"] as? String ?? "" } == ["contains (lookup)", "get+release", "create+write+seal", "delete"])
        for t in trace {
            let segments = try #require(t["segments"] as? [[String: Any]])
            let stamps = segments.map { $0["from"] as? String ?? "" } + [segments.last?["to"] as? String ?? ""]
            #expect(stamps.first == "client posts" && stamps.last == "client has the reply", "\(stamps)")
            #expect((t["usual"] as? Int ?? 0) > 0 && (t["traced"] as? Int) == 40)
            #expect(segments.allSatisfy { ($0["p50_ns"] as? Int ?? -1) >= 0 })
            // The home's directory index answers (SPEC §10.4): the client
            // reads it itself ("Client peeks"), so a lookup has no hop at
            // all; a get goes straight to the owner.
            if t["name"] as? String == "contains (lookup)" {
                #expect(stamps == ["client posts", "client has the reply"], "\(stamps)")
            }
            if t["name"] as? String == "get+release" {
                #expect(stamps.contains("n0 posts acquire → n2") && stamps.contains("n2 posts acquireReply → n0")
                        && !stamps.contains { $0.contains("n1") }, "\(stamps)")
            }
            // The owner's unpublish answers the requester from the home
            // (SPEC §10.6 "delete"): 3 hops between stores, not 4.
            if t["name"] as? String == "delete" {
                #expect(stamps.contains("n0 posts delete → n2") && stamps.contains("n2 posts unpublishFor → n1")
                        && stamps.contains("n1 posts result → n0") && !stamps.contains("n1 posts result → n2"), "\(stamps)")
            }
        }
    }
}
