/// A 20-byte object id (Plasma's `ObjectID`), printed and parsed as 40 hex
/// digits. Held inline (no heap allocation per id): bytes 0..<8 and 8..<16
/// as little-endian words, 16..<20 as a 32-bit word; hashing and equality
/// use the words, ordering is the bytes' lexicographic order.
public struct ObjectID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public static let byteCount = 20
    let w0: UInt64, w1: UInt64, w2: UInt32

    /// - Returns: nil unless `bytes` holds exactly 20 bytes.
    public init?(bytes: [UInt8]) {
        guard bytes.count == ObjectID.byteCount else { return nil }
        (w0, w1, w2) = bytes.withUnsafeBytes {
            (UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
             UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
             UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 16, as: UInt32.self)))
        }
    }

    /// From exactly 20 raw bytes (no intermediate array).
    public init(raw: UnsafeRawBufferPointer) {
        precondition(raw.count == ObjectID.byteCount)
        w0 = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        w1 = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        w2 = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
    }

    /// Bytes 0..<8 and 8..<16 as little-endian words, bytes 16..<20 as a
    /// little-endian 32-bit word.
    public var words: (UInt64, UInt64, UInt32) { (w0, w1, w2) }

    /// Appends the 20 bytes to `out` (no intermediate array).
    public func append(to out: inout [UInt8]) {
        out.appendLittleEndian(w0)
        out.appendLittleEndian(w1)
        out.appendLittleEndian(w2)
    }

    /// The 20 bytes.
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: ObjectID.byteCount)
        out.withUnsafeMutableBytes {
            $0.storeBytes(of: w0.littleEndian, toByteOffset: 0, as: UInt64.self)
            $0.storeBytes(of: w1.littleEndian, toByteOffset: 8, as: UInt64.self)
            $0.storeBytes(of: w2.littleEndian, toByteOffset: 16, as: UInt32.self)
        }
        return out
    }

    /// Parses 40 hex digits (either case).
    public init?(hex: String) {
        let digits = Array(hex.utf8)
        guard digits.count == 2 * ObjectID.byteCount else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(ObjectID.byteCount)
        var i = 0
        while i < digits.count {
            guard let hi = ObjectID.nibble(digits[i]), let lo = ObjectID.nibble(digits[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        self.init(bytes: out)
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    public var hex: String {
        let table = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(40)
        for b in bytes { out.append(table[Int(b >> 4)]); out.append(table[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    public var description: String { hex }

    /// The hash Dictionary and Set use: the three words folded by two
    /// 64×64→128-bit multiplications with fixed odd constants (each a
    /// bijection on the low bits, so no bit of the id is lost), keyed, then
    /// finished with MurmurHash3's fmix64 so that every bit reaches the low
    /// bits a table indexes by. SipHash over 20 bytes, the synthesized
    /// hash, cost several times this on every lookup of the store's tables
    /// (issue 12). The key comes from the process's own `Hasher` seed
    /// (random per process, fixed under SWIFT_DETERMINISTIC_HASHING);
    /// `seed` is the table's.
    public func _rawHashValue(seed: Int) -> Int {
        let k = ObjectID.hashKey ^ UInt64(UInt(bitPattern: seed))
        let a = (w0 ^ k).multipliedFullWidth(by: 0x9E37_79B9_7F4A_7C15)
        let b = (a.high ^ a.low ^ w1).multipliedFullWidth(by: 0xC2B2_AE3D_27D4_EB4F)
        var h = b.high ^ b.low ^ UInt64(w2) ^ (k >> 32 | k << 32)
        h ^= h >> 33
        h &*= 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33
        h &*= 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 33
        return Int(truncatingIfNeeded: h)
    }

    static let hashKey: UInt64 = {
        var h = Hasher()
        h.combine(0x504C_454E_554D as UInt64)
        return UInt64(UInt(bitPattern: h.finalize()))
    }()

    /// Lexicographic order of the bytes: the words compared as big-endian numbers.
    public static func < (a: ObjectID, b: ObjectID) -> Bool {
        (a.w0.byteSwapped, a.w1.byteSwapped, a.w2.byteSwapped) < (b.w0.byteSwapped, b.w1.byteSwapped, b.w2.byteSwapped)
    }
}
