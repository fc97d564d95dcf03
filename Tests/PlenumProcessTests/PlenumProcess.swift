import Foundation

/// Runs the real `plenum` executable built beside this test bundle.
enum PlenumProcess {
    /// `.build/<triple>/debug/plenum`, next to PlenumPackageTests.xctest,
    /// or `$PLENUM_TEST_BINARY` (the gRPC baseline's `plenum-grpc`, which
    /// Baseline/Scripts/test runs the cluster tests with).
    static var executable: String {
        if let b = ProcessInfo.processInfo.environment["PLENUM_TEST_BINARY"], !b.isEmpty { return b }
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("plenum").path
    }

    final class Running: @unchecked Sendable {
        let process = Process()
        private let out = Pipe(), err = Pipe()
        private let lock = NSLock()
        private var outData = Data(), errData = Data()
        private let group = DispatchGroup()

        init(_ arguments: [String], environment: [String: String] = [:]) throws {
            process.executableURL = URL(fileURLWithPath: PlenumProcess.executable)
            process.arguments = arguments
            if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
            process.standardOutput = out
            process.standardError = err
            try process.run()
            for (pipe, isOut) in [(out, true), (err, false)] {
                group.enter()
                DispatchQueue.global().async { [self] in
                    let d = pipe.fileHandleForReading.readDataToEndOfFile()
                    lock.withLock { if isOut { outData = d } else { errData = d } }
                    group.leave()
                }
            }
        }

        /// Waits for the process (killing it after `timeout` seconds).
        func finish(timeout: Double = 300) -> (status: Int32, stdout: String, stderr: String) {
            if group.wait(timeout: .now() + timeout) == .timedOut { process.terminate(); group.wait() }
            process.waitUntilExit()
            return lock.withLock { (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self)) }
        }
    }

    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 300) throws -> (status: Int32, stdout: String, stderr: String) {
        try Running(arguments, environment: environment).finish(timeout: timeout)
    }

    static func json(_ text: String) -> [String: Any]? {
        guard let line = text.split(separator: "\n").last else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }
}

/// Waits for an event: polls `condition` every 10 ms until it holds or
/// `seconds` pass. The bound only ends a wait for an event that never
/// comes (a failure); it is never what a test waits for, so keep it long —
/// CI runs on a shared, sometimes busy machine.
func eventually(_ seconds: Double = 60, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(10_000)
    }
    return condition()
}

/// A flag one thread raises and another reads.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var raised = false
    func set() { lock.withLock { raised = true } }
    var isSet: Bool { lock.withLock { raised } }
}

