import Glibc
import PlenumMemory
import PlenumRegion
import Testing

/// A unique /dev/shm path removed when the test ends.
final class TempPath {
    let path: String
    init(_ tag: String = #function) {
        let clean = tag.filter { $0.isLetter || $0.isNumber }
        path = "/dev/shm/plenum-test-\(getpid())-\(clean)-\(UInt32.random(in: 0...UInt32.max))"
    }
    deinit { unlink(path) }
}

@Suite struct RegionTests {
    @Test func createThenOpenRoundTripsTheHeader() throws {
        let t = TempPath()
        let created = try Region.create(at: t.path, size: 1 << 20, lineSize: .default, owner: 3)
        var st = stat()
        #expect(stat(t.path, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600, "region files are private to their user")
        let opened = try Region.open(at: t.path)
        #expect(opened.header == created.header)
        #expect(opened.header.ownerNode == 3)
        #expect(opened.header.dataOffset == 4096)
        #expect(opened.size == 1 << 20)
    }

    @Test func createRefusesToClobberAnExistingFile() throws {
        let t = TempPath()
        _ = try Region.create(at: t.path, size: 1 << 16)
        #expect(throws: RegionError.alreadyExists(path: t.path)) { try Region.create(at: t.path, size: 1 << 16) }
        // --force formats in place.
        _ = try Region.create(at: t.path, size: 1 << 16, owner: 9, overwrite: true)
        #expect(try Region.open(at: t.path).header.ownerNode == 9)
    }

    @Test func createValidatesSize() {
        let t = TempPath()
        #expect(throws: RegionError.tooSmall(requested: 4096, minimum: 8192)) { try Region.create(at: t.path, size: 4096) }
        #expect(throws: RegionError.notAligned(requested: 10000, alignment: 4096)) { try Region.create(at: t.path, size: 10000) }
    }

    @Test func openRejectsForeignFiles() throws {
        let t = TempPath()
        let fd = open(t.path, O_RDWR | O_CREAT, 0o600)
        #expect(ftruncate(fd, 8192) == 0)
        close(fd)
        #expect(throws: RegionError.badMagic(path: t.path, found: 0)) { try Region.open(at: t.path) }
        #expect(throws: RegionError.self) { try Region.open(at: "/dev/shm/does-not-exist-\(getpid())") }
    }

    @Test func openDetectsAResizedFile() throws {
        let t = TempPath()
        _ = try Region.create(at: t.path, size: 1 << 16)
        #expect(truncate(t.path, 1 << 17) == 0)
        #expect(throws: RegionError.sizeMismatch(path: t.path, header: 1 << 16, mapped: 1 << 17)) { try Region.open(at: t.path) }
    }

    @Test func openDetectsHeaderDamage() throws {
        let t = TempPath()
        let r = try Region.create(at: t.path, size: 1 << 16)
        // Flip a byte of createdNanos: only the checksum notices.
        r.memory().write(at: RegionLayout.createdOffset, count: 1) { $0[0] ^= 0x40 }
        #expect(throws: RegionError.headerChecksum(path: t.path)) { try Region.open(at: t.path) }
        // A wrong version is named as such.
        let r2 = try Region.create(at: t.path, size: 1 << 16, overwrite: true)
        r2.memory().write(at: RegionLayout.versionOffset, count: 4) { $0.storeBytes(of: UInt32(99), as: UInt32.self) }
        #expect(throws: RegionError.unsupportedVersion(path: t.path, found: 99)) { try Region.open(at: t.path) }
    }

    @Test func segmentsAppendListAndValidate() throws {
        let t = TempPath()
        let r = try Region.create(at: t.path, size: 1 << 16)
        let m = r.memory()
        let a = try SegmentTable.append(.raw, name: "alpha", length: 100, in: m, header: r.header)
        let b = try SegmentTable.append(.ring, name: "beta", length: 5000, producer: 1, consumer: 2, in: m, header: r.header)
        #expect(a.offset == 4096 && a.length == 128)
        #expect(b.offset == 8192 && b.length == 5120)
        let reopened = try Region.open(at: t.path)
        #expect(try SegmentTable.list(in: reopened.memory(), header: reopened.header) == [a, b])
        #expect(try SegmentTable.find("beta", in: m, header: r.header) == b)
        #expect(throws: RegionError.segmentNotFound(name: "gamma")) { try SegmentTable.find("gamma", in: m, header: r.header) }
        #expect(throws: RegionError.self) { try SegmentTable.append(.raw, name: "alpha", length: 1, in: m, header: r.header) }
        #expect(throws: RegionError.badSegmentName("")) { try SegmentTable.append(.raw, name: "", length: 1, in: m, header: r.header) }
        #expect(throws: RegionError.self) { try SegmentTable.append(.raw, name: String(repeating: "x", count: 24), length: 1, in: m, header: r.header) }
        #expect(throws: RegionError.outOfSpace(requested: 1 << 16, available: (1 << 16) - 16384)) {
            try SegmentTable.append(.raw, name: "huge", length: 1 << 16, in: m, header: r.header)
        }
        // A damaged entry is refused, not followed.
        m.write(at: RegionLayout.segmentEntryOffset(line: 128, index: 1) + RegionLayout.entryOffset, count: 1) { $0[0] ^= 0x10 }
        #expect(throws: RegionError.corruptSegment(index: 1, reason: "checksum")) { try SegmentTable.list(in: m, header: r.header) }
    }

    @Test func segmentCountBeyondCapacityIsRefused() throws {
        let t = TempPath()
        let r = try Region.create(at: t.path, size: 1 << 16)
        r.memory().store64(1000, at: RegionLayout.segmentCountOffset(line: 128), ordering: .relaxed)
        #expect(throws: RegionError.corruptHeader(path: "region", field: "segmentCount", value: 1000)) {
            try SegmentTable.list(in: r.memory(), header: r.header)
        }
    }

    @Test func segmentTableFillsUp() throws {
        let t = TempPath()
        let r = try Region.create(at: t.path, size: 1 << 20)
        for i in 0..<RegionLayout.segmentCapacity {
            try SegmentTable.append(.raw, name: "s\(i)", length: 64, alignment: 128, in: r.memory(), header: r.header)
        }
        #expect(throws: RegionError.segmentTableFull(capacity: 32)) {
            try SegmentTable.append(.raw, name: "one-more", length: 64, in: r.memory(), header: r.header)
        }
    }

    @Test func numaBindingReportsClearly() throws {
        let t = TempPath()
        let topology = Numa.topology
        if topology.available {
            _ = try Region.create(at: t.path, size: 1 << 16, numaNode: 0)
            #expect(throws: RegionError.numaNodeOutOfRange(requested: topology.maxNode + 1, maxNode: topology.maxNode)) {
                try Region.create(at: t.path + "b", size: 1 << 16, numaNode: topology.maxNode + 1)
            }
            #expect(access(t.path + "b", F_OK) != 0, "a refused create leaves no file behind")
        } else {
            #expect(throws: RegionError.numaUnavailable) { try Region.create(at: t.path, size: 1 << 16, numaNode: 0) }
        }
        #expect(Numa.summary.hasPrefix("libnuma:"))
    }
}
