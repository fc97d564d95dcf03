import Foundation
@testable import PlenumClient
import PlenumRegion
import PlenumStore
import PlenumWire
import Testing

/// The trust model (SPEC §9.7): clients of one store cannot reach each
/// other's rings, readers map read-only, other uids may only read, and
/// sealed objects can be checked against their digests.
@Suite(.serialized) struct ClientIsolationTests {
    /// The permissions column of this process's mapping of `path`.
    static func mappingPermissions(of path: String) -> [String] {
        let maps = readWhole("/proc/self/maps")
        return maps.split(separator: "\n").filter { $0.hasSuffix(path) }.map { String($0.split(separator: " ")[1]) }
    }

    @Test func aClientScribblingOverAllOfTheRegionButObjectsCannotReachAnotherClientsRings() throws {
        let store = try HardenedStore()
        let a = try PlenumClient(socketPath: store.socket)
        try a.useRings()
        #expect(try a.contains(oid(n: 1)) == false)
        // b writes 0xFF over every byte of the region outside the objects
        // segment: where the rings and the doorbell used to live.
        let b = try PlenumClient(socketPath: store.socket)
        let header = try RegionHeader.read(from: b.memory, mappedSize: b.memory.size, path: store.regionPath)
        let objects = try SegmentTable.find("objects", in: b.memory, header: header)
        for (start, end) in [(header.dataOffset, objects.offset), (objects.offset + objects.length, b.memory.size)] where end > start {
            b.memory.write(at: start, count: end - start) { _ = $0.initializeMemory(as: UInt8.self, repeating: 0xFF) }
            b.memory.flush(at: start, count: end - start)
        }
        b.memory.fence(.store)
        for i in 0..<200 { #expect(try a.contains(oid(n: i)) == false) }
        try a.put(oid(n: 7), data: [1, 2, 3])
        #expect(try a.get([oid(n: 7)], timeoutMs: 0).first??.data == [1, 2, 3])
        #expect(a.usesRings)
        #expect(store.stop().status == 0)
    }

    @Test func readersMapReadOnlyAndCannotCreate() throws {
        let store = try HardenedStore()
        let writer = try PlenumClient(socketPath: store.socket)
        try writer.put(oid(n: 1), data: [7, 7, 7])
        let reader = try PlenumClient(socketPath: store.socket, access: .readOnly)
        let perms = Self.mappingPermissions(of: store.regionPath)
        #expect(perms.contains("r--s"), "the reader's mapping is read-only: \(perms)")
        #expect(perms.contains("rw-s"), "the writer's is read-write: \(perms)")
        #expect(try reader.get([oid(n: 1)], timeoutMs: 0).first??.data == [7, 7, 7])
        #expect(throws: ClientError.self) { _ = try reader.create(oid(n: 2), dataSize: 8) }
        #expect(store.stop().status == 0)
    }

    /// A client of another uid (socket 0666) may read, never change the store.
    @Test(.enabled(if: geteuid() == 0 && access("/usr/bin/setpriv", X_OK) == 0, "needs root and setpriv"))
    func anotherUidMayOnlyRead() throws {
        let store = try HardenedStore(["--socket-mode", "666"])
        let writer = try PlenumClient(socketPath: store.socket)
        try writer.put(oid(n: 1), data: Array("shared".utf8))
        let file = "/tmp/plenum-iso-\(getpid()).txt"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        chmod(file, 0o644)
        defer { unlink(file) }
        // The build directory may not be reachable by another uid (a clone
        // under /root): run a copy from a world-readable directory.
        let dir = "/tmp/plenum-iso-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: PlenumProcess.executable, toPath: dir + "/plenum")
        chmod(dir + "/plenum", 0o755)
        let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups", dir + "/plenum"]
        func asNobody(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            p.arguments = nobody + args
            let out = Pipe(), err = Pipe()
            p.standardOutput = out
            p.standardError = err
            try p.run()
            let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
        }
        let help = try asNobody(["--help"])
        try #require(help.status == 0, "uid 65534 cannot run plenum (is the Swift runtime readable by others?): \(help)")
        let get = try asNobody(["get", oid(n: 1).hex, "--socket", store.socket])
        #expect(get.status == 0 && get.stdout == "shared", "\(get)")
        let put = try asNobody(["put", "--name", "x", file, "--socket", store.socket])
        #expect(put.status != 0 && put.stderr.contains("may only read"), "\(put)")
        let rm = try asNobody(["rm", oid(n: 1).hex, "--socket", store.socket])
        #expect(rm.status != 0, "\(rm)")
        #expect(try writer.contains(oid(n: 1)))
        #expect(store.stop().status == 0)
    }

    @Test func verifyFindsBytesChangedAfterSeal() throws {
        let store = try HardenedStore()
        let c = try PlenumClient(socketPath: store.socket)
        let data = (0..<10_000).map { UInt8(truncatingIfNeeded: $0) }
        try c.put(oid(n: 1), data: data)
        try c.put(oid(n: 2), data: data)
        #expect(try c.verify([oid(n: 1), oid(n: 2)]) == [nil, nil])
        let ok = try PlenumProcess.run(["get", oid(n: 1).hex, "--verify", "--socket", store.socket, "-o", "/dev/null"], timeout: 60)
        #expect(ok.status == 0, "\(ok.stderr)")
        // A writer (trusted not to, SPEC §9.7) changes one byte of a sealed object.
        let b = try #require(try c.get([oid(n: 1)], timeoutMs: 0).first ?? nil)
        c.memory.write(at: b.location.offset + 4_321, count: 1) { $0[0] ^= 0x01 }
        c.memory.flush(at: b.location.offset + 4_321, count: 1)
        c.memory.fence(.store)
        try c.release(b)
        let results = try c.verify([oid(n: 1), oid(n: 2), oid(n: 3)])
        #expect(results[0].map { Wire.code($0) } == .digestMismatch || "\(results[0]!)".contains("corrupt"))
        #expect(results[1] == nil)
        #expect(results[2] != nil, "an unknown id is an error")
        let bad = try PlenumProcess.run(["get", oid(n: 1).hex, "--verify", "--socket", store.socket, "-o", "/dev/null"], timeout: 60)
        #expect(bad.status != 0 && bad.stderr.contains("corrupt"), "\(bad.stderr)")
        #expect(store.stop().status == 0)
    }
}

/// An id from a number (distinct for distinct n).
func oid(n: Int) -> ObjectID {
    var b = [UInt8](repeating: 0xCD, count: 20)
    for i in 0..<8 { b[i] = UInt8(truncatingIfNeeded: n >> (8 * i)) }
    return ObjectID(bytes: b)!
}
