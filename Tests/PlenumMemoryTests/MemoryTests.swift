import Glibc
import PlenumMemory
import Testing

@Suite struct MemoryTests {
    @Test func crc32cMatchesTheCastagnoliCheckValue() {
        let digits = Array("123456789".utf8)
        #expect(digits.withUnsafeBytes { CRC32C.checksum($0) } == 0xE306_9283)
        #expect([UInt8]().withUnsafeBytes { CRC32C.checksum($0) } == 0)
        // Chaining equals one pass, at every split (hardware 8-byte path + tail).
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let whole = data.withUnsafeBytes { CRC32C.checksum($0) }
        for split in [0, 1, 7, 8, 9, 500, 999] {
            let head = data[..<split].withUnsafeBytes { CRC32C.checksum($0) }
            #expect(data[split...].withUnsafeBytes { CRC32C.checksum($0, seed: head) } == whole)
        }
    }

    /// A checksum that skips a gap (a ring slot's own CRC field) equals the
    /// chained checksum of the two sides, and a bitwise reference of the
    /// concatenation, for every short length and tail (8-, 4- and 1-byte steps).
    @Test func crc32cSkippingAGapEqualsTheTwoSides() {
        func reference(_ b: [UInt8]) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for x in b {
                c ^= UInt32(x)
                for _ in 0..<8 { c = c & 1 == 1 ? c >> 1 ^ 0x82F6_3B78 : c >> 1 }
            }
            return ~c
        }
        let data = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
        for n in [0, 3, 4, 20, 24, 25, 31, 32, 33, 45, 64, 299] {
            for gap in [0..<0, 0..<4, 20..<24, 7..<12, n / 2..<n] where gap.upperBound <= n {
                let bytes = Array(data[..<n])
                let skipped = bytes.withUnsafeBytes { CRC32C.checksum($0, skipping: gap) }
                let head = bytes[..<gap.lowerBound].withUnsafeBytes { CRC32C.checksum($0) }
                #expect(skipped == bytes[gap.upperBound...].withUnsafeBytes { CRC32C.checksum($0, seed: head) }, "\(n) bytes, gap \(gap)")
                #expect(skipped == reference(Array(bytes[..<gap.lowerBound]) + Array(bytes[gap.upperBound...])), "\(n) bytes, gap \(gap)")
            }
        }
    }

    /// The checksum of long inputs (three interleaved streams joined by
    /// shifting, for 768 bytes and more) equals a bit-by-bit CRC-32C, at
    /// every length around the block boundaries and at odd addresses.
    @Test func crc32cOfLongInputsMatchesABitwiseReference() {
        func reference(_ b: ArraySlice<UInt8>) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for x in b {
                c ^= UInt32(x)
                for _ in 0..<8 { c = c & 1 == 1 ? c >> 1 ^ 0x82F6_3B78 : c >> 1 }
            }
            return ~c
        }
        var rng = SystemRandomNumberGenerator()
        let data = (0..<(3 * 8192 * 2 + 3 * 256 + 128)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let lengths = [767, 768, 769, 3 * 256 + 7, 2 * 768 + 8, 24_575, 24_576, 24_577, 24_576 + 768 + 9, 2 * 24_576, 2 * 24_576 + 3 * 256 + 63]
        for n in lengths {
            for start in [0, 1, 3] {
                let slice = data[start..<(start + n)]
                #expect(slice.withUnsafeBytes { CRC32C.checksum($0) } == reference(slice), "\(n) bytes at +\(start)")
            }
        }
        // Chained over a long prefix, too.
        let head = data[..<30_000].withUnsafeBytes { CRC32C.checksum($0) }
        #expect(data[30_000...].withUnsafeBytes { CRC32C.checksum($0, seed: head) } == reference(data[...]))
    }

    @Test func lineSizeAcceptsOnly64_128_256() throws {
        for ok in [64, 128, 256] { #expect(try LineSize(ok).bytes == ok) }
        for bad in [0, 32, 96, 512, -64] { #expect(throws: LineSizeError.self) { try LineSize(bad) } }
        #expect(LineSize.default.bytes == 128)
        #expect(LineSize.default.roundUp(129) == 256)
    }

    @Test func cpuReportsAUsableFlush() {
        #expect([32, 64, 128, 256].contains(CPU.hardwareLineSize))
        #expect(!CPU.flushInstruction.contains("unknown"))
    }

    @Test func mappedMemoryRoundTripsThroughFlushesAndFences() throws {
        let m = try Mapping(anonymous: 8192)
        for flushes in [true, false] {
            let mem = m.memory(lineSize: .default, flushes: flushes)
            mem.store64(0xDEAD_BEEF, at: 128, ordering: .releasing)
            mem.flush(at: 128, count: 8)
            mem.fence(.store)
            mem.invalidate(at: 128, count: 8)
            mem.fence(.full)
            #expect(mem.load64(at: 128, ordering: .acquiring) == 0xDEAD_BEEF)
            mem.write(at: 8000, count: 192) { b in for i in 0..<192 { b[i] = UInt8(i) } }
            mem.flush(at: 8000, count: 192) // the last line ends exactly at the mapping's end
            #expect(mem.read(at: 8000, count: 192) { Array($0) } == (0..<192).map { UInt8($0) })
            #expect(mem.mutants.isEmpty, "production memory never runs a mutant")
        }
    }

    @Test func twoMappingsOfOneFileSeeEachOthersFlushedStores() throws {
        let path = "/dev/shm/plenum-test-\(getpid())-mm"
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
        #expect(fd >= 0)
        defer { close(fd); unlink(path) }
        #expect(ftruncate(fd, 4096) == 0)
        let a = try Mapping(fd: fd, size: 4096, subject: path).memory(lineSize: .default)
        let b = try Mapping(fd: fd, size: 4096, subject: path).memory(lineSize: .default)
        a.store64(42, at: 256, ordering: .releasing)
        a.flush(at: 256, count: 8)
        a.fence(.store)
        b.invalidate(at: 256, count: 8)
        b.fence(.full)
        #expect(b.load64(at: 256, ordering: .acquiring) == 42)
    }
}
