#if canImport(Glibc)
import Glibc
#endif
import PlenumMemory
import PlenumRegion
import PlenumWire

/// The daemon's two files, guarded so that an operator cannot lose a
/// running store by mistake (SPEC §9.4 "Files"):
///
/// ```
///   socket path   nothing there        → bind
///                 a socket, answered   → refuse (a live store serves there)
///                 a socket, refused    → stale: replaced
///                 anything else        → refuse, never deleted
///   region path   nothing there        → created 0600, locked, deleted on exit
///                 locked (flock)       → refuse (a live store owns it)
///                 this node's own region, unlocked (cluster restart)
///                                      → unlinked and created anew (a new
///                                        file: whatever a peer's client still
///                                        maps keeps its bytes, SPEC §10.8),
///                                        0600, deleted on exit
///                 other, with --force  → reformatted, 0600, kept on exit
///                 other                → refuse
/// ```
extension StoreDaemon {
    /// What lives at `path` now: refuses a live daemon's socket and any
    /// non-socket; removes a stale socket.
    static func claimSocketPath(_ path: String) throws(DaemonError) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        guard st.st_mode & S_IFMT == S_IFSOCK else {
            throw .badOption("\(path) exists and is not a socket; it was left untouched: remove it yourself or choose another --socket")
        }
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { throw .system(.last("socket")) }
        defer { close(probe) }
        let rc = (try? UnixSocket.withAddress(path) { connect(probe, $0, $1) }) ?? -1
        if rc == 0 {
            throw .badOption("another store is serving at \(path): stop it first (SIGTERM) or choose another --socket")
        }
        let e = errno
        guard e == ECONNREFUSED else {
            throw .system(SystemCallError("connect", errno: e, subject: path, hint: "cannot tell whether a store serves there; choose another --socket"))
        }
        unlink(path)   // a socket nobody listens on: left by a store that died
    }

    /// The identity (device, inode) of what is at `path`, if anything.
    static func identity(_ path: String) -> (UInt64, UInt64)? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return (UInt64(st.st_dev), UInt64(st.st_ino))
    }

    /// Opens (creating if absent) and locks the region file before it is
    /// formatted. Returns the locked descriptor (held for the daemon's life)
    /// and whether this daemon may delete the file on exit.
    static func lockRegionFile(_ path: String, force: Bool, clusterNode: UInt32?) throws(DaemonError) -> (fd: Int32, owned: Bool) {
        var fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        let created = fd >= 0
        if !created {
            guard errno == EEXIST else { throw .system(.last("open", subject: path, hint: "check the directory exists and is writable")) }
            fd = open(path, O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { throw .system(.last("open", subject: path, hint: "check permissions, or choose another region")) }
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            // Even a file this daemon just created is not removed: another
            // store (with --force) may have locked it first and serve from it.
            close(fd)
            throw .badOption("region \(path) is in use by a running store: stop it first or choose another region")
        }
        if created { return (fd, true) }
        var st = stat()
        fstat(fd, &st)
        let regular = st.st_mode & S_IFMT == S_IFREG
        // A cluster node restarting after a crash reclaims its own region.
        var own = false
        if regular, let me = clusterNode, let r = try? Region.open(at: path) { own = r.header.ownerNode == me }
        guard own || force else {
            close(fd)
            throw .badOption("region \(path) exists: a store never reformats an existing region (whatever it holds would be lost); remove it, choose another path, or pass --force")
        }
        if own {
            // A new life in a new file (SPEC §10.8 "A new life, a new file"):
            // buffers peers' clients still map of the old life keep their
            // bytes (the old pages live until the last mapping goes), and
            // peers see the new inode and map the new file.
            unlink(path)
            close(fd)
            return try lockRegionFile(path, force: false, clusterNode: clusterNode)
        }
        if regular, fchmod(fd, 0o600) != 0 {
            let e = SystemCallError.last("fchmod", subject: path, hint: "object data must not be readable by others; fix the file's owner")
            close(fd)
            throw .system(e)
        }
        return (fd, own)
    }
}
