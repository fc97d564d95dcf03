/// A 20-byte object id (Plasma's `ObjectID`), printed and parsed as 40 hex
/// digits.
public struct ObjectID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public static let byteCount = 20
    public private(set) var bytes: [UInt8]

    /// - Returns: nil unless `bytes` holds exactly 20 bytes.
    public init?(bytes: [UInt8]) {
        guard bytes.count == ObjectID.byteCount else { return nil }
        self.bytes = bytes
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
        bytes = out
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

    public static func < (a: ObjectID, b: ObjectID) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}
