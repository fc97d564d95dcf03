import Foundation

/// Starting a peer process of this same executable (benchmarks, demo).
public enum Peer {
    /// The running executable, resolved through /proc/self/exe.
    public static var selfExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// A started child whose stdout is captured; stderr passes through.
    public final class Child {
        let process = Process()
        let output = Pipe()
        var collected = Data()
        let reader: Thread

        public init(arguments: [String], executable: String = Peer.selfExecutable) throws {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            process.standardOutput = output
            try process.run()
            let handle = output.fileHandleForReading
            let box = DataBox()
            reader = Thread { box.data = handle.readDataToEndOfFile() }
            self.box = box
            reader.start()
        }
        let box: DataBox

        /// Waits for exit; returns (status, stdout).
        public func wait() -> (status: Int32, output: String) {
            process.waitUntilExit()
            while !box.done { usleep(1000) }
            return (process.terminationStatus, String(decoding: box.data, as: UTF8.self))
        }

        public func kill() { if process.isRunning { process.terminate() } }
    }

    final class DataBox: @unchecked Sendable {
        private let lock = NSLock()
        private var _data = Data()
        private var _done = false
        var data: Data {
            get { lock.withLock { _data } }
            set { lock.withLock { _data = newValue; _done = true } }
        }
        var done: Bool { lock.withLock { _done } }
    }
}
