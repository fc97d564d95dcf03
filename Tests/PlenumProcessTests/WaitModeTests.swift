import Foundation
import PlenumClient
import PlenumCluster
import PlenumStore
import Testing

/// SPEC §10.1 "Waiting" and §10.3 "No bells", with real stores.
@Suite(.serialized) struct WaitModeTests {
    static func wait(_ cluster: TestCluster, _ n: NodeID) -> [String: Any] { cluster.status(n)?["wait"] as? [String: Any] ?? [:] }

    static func homedAt(_ home: NodeID, among live: [NodeID], count: Int, tag: UInt8) -> [ObjectID] {
        Array((0..<100_000).lazy.map { cid($0, tag) }.filter { Home.of($0, among: live) == home }.prefix(count))
    }

    /// Lookups with pauses between them (so the home goes to sleep): with
    /// bells the sleeping home is rung; without, nobody rings and the home
    /// finds the lookups by its idle poll (the heartbeat, every second here,
    /// would be far too late for 30 lookups).
    @Test(arguments: [true, false])
    func aSleepingHomeIsRungOrPollsByItself(bells: Bool) throws {
        let cluster = try TestCluster(nodes: 2, configure: { c in
            c.bells = bells
            c.heartbeatMillis = 1000
            c.deadAfterMillis = 30_000
            c.directoryIndex = 0        // every lookup a message to the home (SPEC §10.4)
        })
        defer { cluster.stop() }
        let ids = Self.homedAt(1, among: [0, 1], count: 30, tag: bells ? 0x51 : 0x52)
        let c0 = try cluster.client(0), c1 = try cluster.client(1)
        for id in ids { try c1.put(id, data: [1]) }
        for id in ids {
            usleep(3_000)   // room for the home to fall asleep; nothing waits on it
            #expect(try c0.contains(id))
        }
        let home = Self.wait(cluster, 1), asker = Self.wait(cluster, 0)
        #expect(home["mode"] as? String == "adaptive" && home["bells"] as? Bool == bells)
        #expect((home["sleeps"] as? Int ?? 0) > 0, "\(home)")
        if bells {
            #expect((asker["bells_rung"] as? Int ?? 0) > 0, "node 0 rang the sleeping home: \(asker)")
            #expect(home["idle_polls"] as? Int == 0, "no idle polls with bells: \(home)")
        } else {
            #expect(asker["bells_rung"] as? Int == 0 && home["bells_rung"] as? Int == 0, "bells off: \(asker) \(home)")
            #expect((home["idle_polls"] as? Int ?? 0) > 0, "the home polled while it slept: \(home)")
        }
    }

    @Test(.enabled(if: ProcessInfo.processInfo.activeProcessorCount >= 2, "needs two CPUs"))
    func dedicatedStoresArePinnedAndNeverSleep() throws {
        let cluster = try TestCluster(nodes: 2, configure: { c in
            c.wait = .dedicated
            for i in c.nodes.indices { c.nodes[i].cpu = i }
        })
        defer { cluster.stop() }
        let id = cid(1, 0x53)
        try cluster.client(0).put(id, data: [7, 7])
        #expect(try cluster.client(1).get([id], timeoutMs: 0).first??.data == [7, 7])
        for n: NodeID in [0, 1] {
            let w = Self.wait(cluster, n)
            #expect(w["mode"] as? String == "dedicated" && w["cpu"] as? Int == Int(n) && w["sleeps"] as? Int == 0, "\(w)")
            let pid = try #require(cluster.processes[n]?.process.processIdentifier)
            let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
            #expect(status.contains("Cpus_allowed_list:\t\(n)\n"), "node \(n) pinned to cpu \(n)")
        }
    }

    @Test func aDedicatedStoreThatCannotBePinnedRefusesToStart() throws {
        let dir = "/tmp/plenum-wait-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = ClusterConfig.local(nodes: 2, memory: 8 << 20, dir: dir, tag: "wait-\(getpid())")
        config.wait = .dedicated
        config.nodes[0].cpu = 4000
        config.nodes[1].cpu = 4001
        try config.toml().write(toFile: dir + "/c.toml", atomically: true, encoding: .utf8)
        let r = try PlenumProcess.run(["store", "--cluster", dir + "/c.toml", "--node", "0"], timeout: 120)
        #expect(r.status != 0)
        #expect(r.stderr.contains("cannot pin node 0 to cpu 4000"), "\(r.stderr)")
        #expect(access(config.nodes[0].region, F_OK) != 0, "nothing left behind")
    }
}
