import Foundation
import PlenumClient
import PlenumCluster
import Testing

/// The systemd unit template `Deploy/plenum@.service` (issue 26): systemd
/// accepts it, and the commands, signal and restart policy it names behave
/// as the unit expects when run as systemd would run them (this machine's
/// PID 1 is not systemd, so no unit is started for real).
@Suite(.serialized) struct SystemdUnitTests {
    static let template = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Deploy/plenum@.service").path

    /// The unit for node `node`, with this build's binary and `file` as the cluster file.
    static func unit(file: String, node: Int) throws -> String {
        try String(contentsOfFile: template, encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/plenum", with: PlenumProcess.executable)
            .replacingOccurrences(of: "/etc/plenum/cluster.toml", with: file)
            .replacingOccurrences(of: "%i", with: "\(node)")
    }

    static func value(_ key: String, in unit: String) -> String? {
        unit.split(separator: "\n").first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
    }

    static func setUp(_ tag: String) throws -> (dir: String, file: String, config: ClusterConfig) {
        let dir = "/tmp/plenum-unit-\(getpid())-\(tag)"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let config = ClusterConfig.local(nodes: 1, memory: 8 << 20, dir: dir, tag: "unit-\(getpid())-\(tag)")
        let file = dir + "/cluster.toml"
        try config.toml().write(toFile: file, atomically: true, encoding: .utf8)
        return (dir, file, config)
    }

    @Test func systemdAcceptsTheTemplateAndRefusesABrokenCopy() throws {
        let (dir, file, _) = try Self.setUp("verify")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let tool = try #require(analyze, "systemd-analyze is missing (Scripts/deps.sh installs the systemd package)")
        func verify(_ text: String) throws -> (Int32, String) {
            let path = dir + "/plenum@0.service"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let p = Process(), err = Pipe()
            p.executableURL = URL(fileURLWithPath: tool)
            p.arguments = ["verify", path]
            p.standardError = err
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            return (p.terminationStatus, text)
        }
        let unit = try Self.unit(file: file, node: 0)
        let (status, warnings) = try verify(unit)
        #expect(status == 0 && warnings.isEmpty, "systemd-analyze: \(warnings)")
        let (broken, why) = try verify(unit.replacingOccurrences(of: PlenumProcess.executable, with: "/nonexistent/plenum"))
        #expect(broken != 0 && why.contains("not executable"), "a unit naming a missing binary passed: \(why)")
    }

    @Test func theUnitsCommandsSignalAndRestartPolicyMatchTheStore() throws {
        let (dir, file, config) = try Self.setUp("run")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let unit = try Self.unit(file: file, node: 0)
        #expect(Self.value("KillSignal", in: unit) == "SIGTERM" && Self.value("Restart", in: unit) == "on-failure")
        #expect(Self.value("SuccessExitStatus", in: unit) == "0")
        func argv(_ key: String) throws -> [String] {
            let line = try #require(Self.value(key, in: unit))
            let words = line.split(separator: " ").map(String.init)
            #expect(words.first == PlenumProcess.executable)
            return Array(words.dropFirst())
        }
        // ExecStartPre checks the file and succeeds.
        let pre = try PlenumProcess.run(try argv("ExecStartPre"), timeout: 60)
        #expect(pre.status == 0, "\(pre.stderr)")
        // ExecStart serves; the unit's stop signal ends it with the success status, cleanly.
        let node = config.nodes[0]
        for life in 0..<2 {
            let store = try PlenumProcess.Running(try argv("ExecStart"))
            #expect(eventually(60) { (try? PlenumClient(socketPath: node.socket)) != nil }, "life \(life): the store did not come up")
            let client = try PlenumClient(socketPath: node.socket)
            try client.put(cid(life, 0xA7), data: [1, 2, 3])
            if life == 0 {
                // A crash (SIGKILL): not a success, so systemd restarts it (life 1).
                kill(store.process.processIdentifier, SIGKILL)
                _ = store.finish(timeout: 60)
            } else {
                kill(store.process.processIdentifier, SIGTERM)
                let r = store.finish(timeout: 60)
                #expect(r.status == 0 && store.process.terminationReason == .exit, "a stop must not be restarted: \(r.stderr)")
                #expect(!FileManager.default.fileExists(atPath: node.socket) && !FileManager.default.fileExists(atPath: node.region),
                        "socket and region removed at stop")
            }
        }
    }
}
