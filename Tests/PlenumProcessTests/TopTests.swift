import Foundation
import PlenumClient
import PlenumCluster
import Testing

/// `plenum top` used as a person uses it (issue 26): in a real terminal
/// (tmux), the screen read back, a node killed and restarted, `q` typed.
@Suite(.serialized) struct TopTests {
    /// Runs tmux through /bin/sh with posix_spawn and waitpid, its stdio on
    /// files: the server it may start outlives the client and must not
    /// hold a pipe of this process open (Foundation's Process would wait
    /// for that pipe's end). With `read`, returns what it printed.
    static func tmux(_ args: [String], read: Bool = false) throws -> (Int32, String) {
        let out = "/tmp/plenum-top-\(getpid())-\(UInt64.random(in: 0..<UInt64.max)).out"
        defer { unlink(out) }
        let quoted = args.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let argv = ["/bin/sh", "-c", "exec tmux \(quoted) </dev/null >\(out) 2>/dev/null"]
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, "/bin/sh", nil, nil, &cargs, environ) == 0 else { return (-1, "") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        let text = read ? ((try? String(contentsOfFile: out, encoding: .utf8)) ?? "") : ""
        return ((status >> 8) & 0xFF, text)
    }

    @Test func topShowsEveryNodeSurvivesADeathAndQuitsOnQ() throws {
        let tmuxThere = ["/usr/bin/tmux", "/bin/tmux"].contains { FileManager.default.isExecutableFile(atPath: $0) }
        try #require(tmuxThere, "tmux is missing (Scripts/deps.sh installs it)")
        let cluster = try TestCluster(nodes: 3)
        defer { cluster.stop() }
        let session = "plenum-top-\(getpid())"
        let socket = "/tmp/\(session).tmux"
        func t(_ args: [String], read: Bool = false) throws -> (Int32, String) { try Self.tmux(["-S", socket] + args, read: read) }
        defer { _ = try? t(["kill-server"]); unlink(socket) }
        let command = "\(PlenumProcess.executable) top --cluster \(cluster.file) --interval 0.2; echo TOP-EXITED; sleep 60"
        #expect(try t(["new-session", "-d", "-s", session, "-x", "160", "-y", "20", command]).0 == 0)
        func screen() -> String { (try? t(["capture-pane", "-p", "-t", session], read: true).1) ?? "" }
        func row(_ n: Int, _ s: String) -> String { s.split(separator: "\n").first { $0.hasPrefix("\(n) ") }.map(String.init) ?? "" }
        // Every node, up, with its peers.
        #expect(eventually(60) { let s = screen(); return (0..<3).allSatisfy { row($0, s).contains("up") && row($0, s).contains("2/2") } }, "\(screen())")
        // Work shows as ops/s on node 0.
        let c0 = try cluster.client(0)
        c0.readsIndexes = false      // every lookup is the store's work (SPEC §10.4 "Client peeks")
        #expect(eventually(60) {
            for i in 0..<300 { _ = try? c0.contains(cid(i, 0xC1)) }
            return row(0, screen()).split(separator: " ").dropFirst(2).first.flatMap { Int($0) }.map { $0 > 0 } == true
        }, "\(screen())")
        // Node 2 dies: DOWN on its row, the others see one peer fewer; it comes back.
        cluster.kill(2)
        #expect(eventually(60) { row(2, screen()).contains("DOWN") }, "\(screen())")
        try cluster.start(2)
        #expect(eventually(60) { let s = screen(); return row(2, s).contains("up") && (0..<3).allSatisfy { row($0, s).contains("2/2") } }, "\(screen())")
        // q quits (the terminal is given back: the shell's echo runs).
        #expect(try t(["send-keys", "-t", session, "q"]).0 == 0)
        #expect(eventually(30) { screen().contains("TOP-EXITED") }, "\(screen())")
    }
}
