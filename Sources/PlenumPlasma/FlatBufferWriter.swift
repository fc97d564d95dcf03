import PlenumStore

/// Builds FlatBuffers front to back for the Plasma replies (SPEC §11.2):
/// root offset, then each table as vtable + table, then its children, so
/// every uoffset points forward as the format requires.
///
/// ```
///   0: u32 → root   [pad][vtable][table: i32 soffset | fields (8-byte aligned) ][children: strings, vectors, tables]
///                          └─ table − soffset        uoffset slots patched once each child is placed ─┘
/// ```
/// Alignment: tables start at multiples of 8 and lay their fields out by
/// natural alignment; vectors align their elements to the element's size;
/// strings are NUL-terminated. Readers (flatc's and ours) accept any order.
public struct FlatBufferWriter {
    public indirect enum Value {
        case u8(UInt8)
        case i32(Int32)
        case i64(Int64)
        case u64(UInt64)
        /// A struct stored inline: its bytes and alignment.
        case inlineStruct([UInt8], align: Int)
        case string([UInt8])
        case strings([[UInt8]])
        case int32s([Int32])
        case int64s([Int64])
        /// A vector of structs: the elements' bytes, one element's size and alignment.
        case structs([UInt8], size: Int, align: Int)
        case table([Value?])
        case tables([[Value?]])
        /// `.strings` of 20-byte object ids, written without a byte array per id.
        case ids([ObjectID])
        /// `.tables` of `n` tables with no field present, written without a
        /// field list per table (the same bytes).
        case emptyTables(Int)
    }

    var bytes: [UInt8] = [0, 0, 0, 0]

    /// A finished buffer whose root table has `fields` (nil: absent, default).
    /// `capacity`: the bytes to reserve up front (a guess is fine).
    public static func build(_ fields: [Value?], capacity: Int = 0) -> [UInt8] {
        var w = FlatBufferWriter()
        w.bytes.reserveCapacity(capacity)
        let root = w.table(fields)
        w.patch(0, to: root)
        return w.bytes
    }

    mutating func pad(to alignment: Int) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }

    mutating func put<T: FixedWidthInteger>(_ v: T, at: Int) {
        bytes.storeLittleEndian(v, at: at)
    }

    mutating func append<T: FixedWidthInteger>(_ v: T) {
        bytes.appendLittleEndian(v)
    }

    /// Stores at `slot` the uoffset to `target` (which lies after it).
    mutating func patch(_ slot: Int, to target: Int) {
        assert(target > slot, "uoffsets point forward")
        put(UInt32(target - slot), at: slot)
    }

    static func layout(_ v: Value) -> (size: Int, align: Int) {
        switch v {
        case .u8: return (1, 1)
        case .i32: return (4, 4)
        case .i64, .u64: return (8, 8)
        case .inlineStruct(let b, let a): return (b.count, a)
        case .string, .strings, .int32s, .int64s, .structs, .table, .tables, .ids, .emptyTables: return (4, 4)
        }
    }

    /// Writes a table and its children; returns the table's position.
    mutating func table(_ fields: [Value?]) -> Int {
        // Inline layout: the soffset at 0, then fields by falling alignment.
        var offsets = [Int](repeating: 0, count: fields.count)
        var cursor = 4
        let present = fields.indices.filter { fields[$0] != nil }.sorted { Self.layout(fields[$0]!).align > Self.layout(fields[$1]!).align }
        for i in present {
            let (size, align) = Self.layout(fields[i]!)
            cursor = (cursor + align - 1) / align * align
            offsets[i] = cursor
            cursor += size
        }
        let tableSize = (cursor + 3) / 4 * 4
        let vtableSize = 4 + 2 * fields.count
        // The table starts 8-aligned, right after its vtable.
        var start = bytes.count + vtableSize
        start = (start + 7) / 8 * 8
        while bytes.count < start - vtableSize { bytes.append(0) }
        append(UInt16(vtableSize))
        append(UInt16(tableSize))
        for o in offsets { append(UInt16(o)) }
        assert(bytes.count == start)
        bytes += [UInt8](repeating: 0, count: tableSize)
        put(Int32(vtableSize), at: start)
        var children: [(slot: Int, Value)] = []
        for i in present {
            let at = start + offsets[i]
            switch fields[i]! {
            case .u8(let v): bytes[at] = v
            case .i32(let v): put(v, at: at)
            case .i64(let v): put(v, at: at)
            case .u64(let v): put(v, at: at)
            case .inlineStruct(let b, _): for (k, x) in b.enumerated() { bytes[at + k] = x }
            case let child: children.append((at, child))
            }
        }
        for (slot, child) in children { patch(slot, to: place(child)) }
        return start
    }

    /// Writes an out-of-line value; returns its position.
    mutating func place(_ v: Value) -> Int {
        switch v {
        case .string(let s):
            pad(to: 4)
            let at = bytes.count
            append(UInt32(s.count))
            bytes += s
            bytes.append(0)
            return at
        case .strings(let list):
            return offsets(list.map { .string($0) })
        case .tables(let list):
            return offsets(list.map { .table($0) })
        case .table(let fields):
            return table(fields)
        case .ids(let list):
            // As .strings, in one block: the offset vector, then each string
            // (u32 length 20, the id, NUL) 4-aligned, so string k starts
            // 28·k after the vector; no pad after the last.
            //   [off 0 … off n−1][20|id 0|0|pad][20|id 1|0|pad] … [20|id n−1|0]
            let at = vectorHeader(count: list.count, align: 4)
            let n = list.count
            guard n > 0 else { return at }
            appendBlock(32 * n - 3) { b in
                for (k, id) in list.enumerated() {
                    let string = 4 * n + 28 * k, (w0, w1, w2) = id.words
                    b.storeBytes(of: UInt32(string - 4 * k).littleEndian, toByteOffset: 4 * k, as: UInt32.self)
                    b.storeBytes(of: UInt32(ObjectID.byteCount).littleEndian, toByteOffset: string, as: UInt32.self)
                    b.storeBytes(of: w0.littleEndian, toByteOffset: string + 4, as: UInt64.self)
                    b.storeBytes(of: w1.littleEndian, toByteOffset: string + 12, as: UInt64.self)
                    b.storeBytes(of: w2.littleEndian, toByteOffset: string + 20, as: UInt32.self)
                }
            }
            return at
        case .emptyTables(let n):
            // As .tables of [] (see table(_:)), in one block: the offset
            // vector, pad, then per table its vtable [4, 4] and a table of
            // one soffset (4), 8-aligned, 8 bytes apart.
            //   [off 0 … off n−1][pad][4|4|4][4|4|4] …
            let at = vectorHeader(count: n, align: 4)
            guard n > 0 else { return at }
            let first = bytes.count, start = (first + 4 * n + 4 + 7) / 8 * 8
            appendBlock(start - first + 8 * n - 4) { b in
                for k in 0..<n {
                    let table = start + 8 * k - first
                    b.storeBytes(of: UInt32(table - 4 * k).littleEndian, toByteOffset: 4 * k, as: UInt32.self)
                    b.storeBytes(of: UInt16(4).littleEndian, toByteOffset: table - 4, as: UInt16.self)
                    b.storeBytes(of: UInt16(4).littleEndian, toByteOffset: table - 2, as: UInt16.self)
                    b.storeBytes(of: Int32(4).littleEndian, toByteOffset: table, as: Int32.self)
                }
            }
            return at
        case .int32s(let list):
            let at = vectorHeader(count: list.count, align: 4)
            for x in list { append(x) }
            return at
        case .int64s(let list):
            let at = vectorHeader(count: list.count, align: 8)
            for x in list { append(x) }
            return at
        case .structs(let b, let size, let align):
            let at = vectorHeader(count: size == 0 ? 0 : b.count / size, align: align)
            bytes += b
            return at
        case .u8, .i32, .i64, .u64, .inlineStruct:
            preconditionFailure("scalars and structs are stored inline")
        }
    }

    /// Appends `count` zero bytes and lets `fill` write into them (offsets
    /// relative to the block's start, which is `bytes.count` before it).
    mutating func appendBlock(_ count: Int, _ fill: (UnsafeMutableRawBufferPointer) -> Void) {
        bytes += [UInt8](unsafeUninitializedCapacity: count) { b, initialized in
            let raw = UnsafeMutableRawBufferPointer(b)
            raw.initializeMemory(as: UInt8.self, repeating: 0)
            fill(raw)
            initialized = count
        }
    }

    /// A vector's length word, placed so that its elements are aligned.
    mutating func vectorHeader(count: Int, align: Int) -> Int {
        pad(to: 4)
        while (bytes.count + 4) % align != 0 { bytes.append(0) }
        let at = bytes.count
        append(UInt32(count))
        return at
    }

    /// A vector of uoffsets to children placed after it.
    mutating func offsets(_ children: [Value]) -> Int {
        let at = vectorHeader(count: children.count, align: 4)
        let first = bytes.count
        bytes += [UInt8](repeating: 0, count: 4 * children.count)
        for (k, c) in children.enumerated() { patch(first + 4 * k, to: place(c)) }
        return at
    }
}
