import Glibc
import PlenumMemory

/// The 64-byte ping-pong of the socket floors (`bench store`'s Unix socket,
/// `bench transports`' TCP): one side times round trips, the other echoes.
enum PingPong64 {
    /// Receives exactly 64 bytes into `buf`; false at end of stream or error.
    static func receive(_ fd: Int32, _ buf: inout [UInt8]) -> Bool {
        var got = 0
        while got < 64 {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, 64 - got, 0) }
            if n <= 0 { return false }
            got += n
        }
        return true
    }

    /// One timed round trip (ns), or nil if the peer went away.
    static func roundTrip(_ fd: Int32, _ buf: inout [UInt8]) -> UInt64? {
        let t0 = monotonicNanos()
        _ = buf.withUnsafeBytes { send(fd, $0.baseAddress, 64, 0) }
        return receive(fd, &buf) ? monotonicNanos() &- t0 : nil
    }

    /// Echoes `count` messages back, or until the peer goes away.
    static func echo(_ fd: Int32, count: Int) {
        var buf = [UInt8](repeating: 0, count: 64)
        for _ in 0..<count {
            guard receive(fd, &buf) else { return }
            _ = buf.withUnsafeBytes { send(fd, $0.baseAddress, 64, 0) }
        }
    }
}
