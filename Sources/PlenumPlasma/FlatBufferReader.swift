import PlenumStore

/// A bounds-checked reader for exactly the FlatBuffers shapes the Plasma
/// protocol uses (SPEC §11.2): one root table; scalar, string, struct and
/// vector fields; tables nested one level in vectors.
///
/// ```
///   buffer:  [u32 root ─┐] … [vtable: u16 vtsize, u16 tsize, u16 field0, …] … [table ◀┘: i32 soffset → vtable, fields…]
///   string:  [u32 n][n bytes][0]            vector: [u32 n][n elements]
///   uoffset fields point forward from where they are stored; soffset = table − vtable.
/// ```
/// Every position is checked against the buffer before it is read: a
/// truncated or hostile buffer throws `PlasmaDecodeError`, never traps.
public struct FlatBufferReader {
    public let bytes: [UInt8]

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// A table: its position and its vtable's field offsets.
    public struct Table {
        let position: Int
        let fields: [Int]
    }

    func need(_ at: Int, _ count: Int) throws(PlasmaDecodeError) {
        guard at >= 0, count >= 0, at <= bytes.count, count <= bytes.count - at else {
            throw .outOfRange("\(count) bytes at \(at) of a \(bytes.count)-byte body")
        }
    }

    func u16(_ at: Int) throws(PlasmaDecodeError) -> Int {
        try need(at, 2)
        return Int(UInt16(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt16.self) }))
    }

    func u32(_ at: Int) throws(PlasmaDecodeError) -> UInt32 {
        try need(at, 4)
        return UInt32(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt32.self) })
    }

    func u64(_ at: Int) throws(PlasmaDecodeError) -> UInt64 {
        try need(at, 8)
        return UInt64(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: UInt64.self) })
    }

    /// Follows the uoffset stored at `at`.
    func follow(_ at: Int) throws(PlasmaDecodeError) -> Int {
        let target = at + Int(try u32(at))
        try need(target, 0)
        return target
    }

    public func root() throws(PlasmaDecodeError) -> Table { try table(at: try follow(0)) }

    func table(at position: Int) throws(PlasmaDecodeError) -> Table {
        let soffset = Int(Int32(bitPattern: try u32(position)))
        let vtable = position - soffset
        let vtsize = try u16(vtable)
        let tsize = try u16(vtable + 2)
        guard vtsize >= 4, vtsize % 2 == 0, tsize >= 4 else { throw .outOfRange("vtable of \(vtsize) bytes for a \(tsize)-byte table") }
        try need(vtable, vtsize)
        try need(position, tsize)
        var fields: [Int] = []
        for i in 0..<(vtsize - 4) / 2 {
            let o = try u16(vtable + 4 + 2 * i)
            guard o == 0 || o >= 4 && o < tsize else { throw .outOfRange("field \(i) at \(o) outside its \(tsize)-byte table") }
            fields.append(o)
        }
        return Table(position: position, fields: fields)
    }

    /// The absolute position of field `i`, or nil when absent (default).
    func field(_ t: Table, _ i: Int, size: Int) throws(PlasmaDecodeError) -> Int? {
        guard i < t.fields.count, t.fields[i] != 0 else { return nil }
        let at = t.position + t.fields[i]
        try need(at, size)
        return at
    }

    public func u64(_ t: Table, _ i: Int) throws(PlasmaDecodeError) -> UInt64 {
        guard let at = try field(t, i, size: 8) else { return 0 }
        return try u64(at)
    }

    public func i64(_ t: Table, _ i: Int) throws(PlasmaDecodeError) -> Int64 { Int64(bitPattern: try u64(t, i)) }

    public func i32(_ t: Table, _ i: Int) throws(PlasmaDecodeError) -> Int32 {
        guard let at = try field(t, i, size: 4) else { return 0 }
        return Int32(bitPattern: try u32(at))
    }

    public func bool(_ t: Table, _ i: Int) throws(PlasmaDecodeError) -> Bool {
        guard let at = try field(t, i, size: 1) else { return false }
        return bytes[at] != 0
    }

    /// A string (or [ubyte]) field's bytes; nil when absent.
    public func string(_ t: Table, _ i: Int) throws(PlasmaDecodeError) -> [UInt8]? {
        guard let at = try field(t, i, size: 4) else { return nil }
        return try string(at: try follow(at))
    }

    func string(at position: Int) throws(PlasmaDecodeError) -> [UInt8] {
        let n = Int(try u32(position))
        try need(position + 4, n)
        return Array(bytes[(position + 4)..<(position + 4 + n)])
    }

    /// An object id: a string field of exactly 20 bytes, read without an
    /// array; nil when absent.
    public func id(_ t: Table, _ i: Int) throws(PlasmaDecodeError) -> ObjectID? {
        guard let at = try field(t, i, size: 4) else { return nil }
        return try id(at: try follow(at))
    }

    func id(at position: Int) throws(PlasmaDecodeError) -> ObjectID {
        let n = Int(try u32(position))
        guard n == ObjectID.byteCount else { throw .badValue("object ids are 20 bytes, got \(n)") }
        try need(position + 4, n)
        return bytes.withUnsafeBytes { ObjectID(raw: UnsafeRawBufferPointer(rebasing: $0[(position + 4)..<(position + 24)])) }
    }

    /// A vector of object ids (strings of 20 bytes); empty when absent.
    public func ids(_ t: Table, _ i: Int) throws(PlasmaDecodeError) -> [ObjectID] {
        guard let (n, start) = try vector(t, i, elementSize: 4) else { return [] }
        var out: [ObjectID] = []
        out.reserveCapacity(n)
        for k in 0..<n { out.append(try id(at: try follow(start + 4 * k))) }
        return out
    }

    /// A vector field: its element count and the position of element 0.
    func vector(_ t: Table, _ i: Int, elementSize: Int) throws(PlasmaDecodeError) -> (count: Int, start: Int)? {
        guard let at = try field(t, i, size: 4) else { return nil }
        let v = try follow(at)
        let n = Int(try u32(v))
        guard n <= (bytes.count - v - 4) / elementSize else { throw .outOfRange("vector of \(n) elements of \(elementSize) bytes past the body's end") }
        return (n, v + 4)
    }

    public func strings(_ t: Table, _ i: Int) throws(PlasmaDecodeError) -> [[UInt8]] {
        guard let (n, start) = try vector(t, i, elementSize: 4) else { return [] }
        var out: [[UInt8]] = []
        out.reserveCapacity(n)
        for k in 0..<n { out.append(try string(at: try follow(start + 4 * k))) }
        return out
    }

    public func tables(_ t: Table, _ i: Int) throws(PlasmaDecodeError) -> [Table] {
        guard let (n, start) = try vector(t, i, elementSize: 4) else { return [] }
        var out: [Table] = []
        for k in 0..<n { out.append(try table(at: try follow(start + 4 * k))) }
        return out
    }

    public func int32s(_ t: Table, _ i: Int) throws(PlasmaDecodeError) -> [Int32] {
        guard let (n, start) = try vector(t, i, elementSize: 4) else { return [] }
        var out: [Int32] = []
        for k in 0..<n { out.append(Int32(bitPattern: try u32(start + 4 * k))) }
        return out
    }

    public func int64s(_ t: Table, _ i: Int) throws(PlasmaDecodeError) -> [Int64] {
        guard let (n, start) = try vector(t, i, elementSize: 8) else { return [] }
        var out: [Int64] = []
        for k in 0..<n { out.append(Int64(bitPattern: try u64(start + 8 * k))) }
        return out
    }

    /// A vector of fixed-size structs: each element's bytes.
    public func structs(_ t: Table, _ i: Int, size: Int) throws(PlasmaDecodeError) -> [ArraySlice<UInt8>] {
        guard let (n, start) = try vector(t, i, elementSize: size) else { return [] }
        return (0..<n).map { bytes[(start + size * $0)..<(start + size * ($0 + 1))] }
    }

    /// An inline struct field's bytes; nil when absent.
    public func inlineStruct(_ t: Table, _ i: Int, size: Int) throws(PlasmaDecodeError) -> ArraySlice<UInt8>? {
        guard let at = try field(t, i, size: size) else { return nil }
        return bytes[at..<(at + size)]
    }
}

public enum PlasmaDecodeError: Error, Equatable, CustomStringConvertible {
    case outOfRange(String)
    case badValue(String)
    public var description: String {
        switch self {
        case .outOfRange(let s): return "malformed FlatBuffer: \(s)"
        case .badValue(let s): return "bad Plasma message: \(s)"
        }
    }
}
