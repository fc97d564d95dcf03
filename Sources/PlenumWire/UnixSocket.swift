#if canImport(Glibc)
import Glibc
#endif

/// The `sockaddr_un` of a Unix socket path, shared by the daemon, the client
/// and the benchmarks.
public enum UnixSocket {
    public struct PathTooLong: Error, CustomStringConvertible {
        public let path: String
        public var description: String { "socket path too long (at most 107 bytes): \(path)" }
    }

    /// Calls `body` with the address of `path` and its length.
    public static func withAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) throws(PathTooLong) -> R {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw PathTooLong(path: path) }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in bytes.enumerated() { p[i] = b } }
        return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
    }

    /// True when a stream socket at `path` accepts a connection now. Its
    /// file exists from bind(2), before the server listens: wait for this,
    /// not for the file.
    public static func acceptsConnections(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return (try? withAddress(path) { connect(fd, $0, $1) }) == 0
    }
}
