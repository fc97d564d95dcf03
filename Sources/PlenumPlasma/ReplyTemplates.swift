import PlenumStore

/// Pre-built frames for the replies of the hot operations (issue 25): the
/// generic writer (`FlatBufferWriter`) lays each reply shape out once; a
/// reply is then that frame copied, with its id, codes, spec and sizes
/// written where the generic writer put them. The bytes are exactly what
/// the generic path gives (`PlasmaCodecTests` compares them), at the cost
/// of one copy instead of a FlatBuffer build — which cost more per reply
/// than the rest of the store's work (callgrind: 40% of a small-object
/// Plasma workload's instructions were reply encoding).
///
/// ```
///  base reply   ──encodeGeneric──▶ [ header | vtable | table | … | id | … | code | … ]
///  one field changed ─────────────▶ first differing byte = that field's slot
///  a reply = copy of the base frame, each field written at its slot
/// ```
/// Every field varied changes its first (least significant / first) byte,
/// and no value changes the layout (the writer stores every present field
/// whatever its value; ids are always 20 bytes).
enum ReplyTemplates {
    struct Template {
        let bytes: [UInt8]
        let slots: [Int]

        /// `base`, and per field a reply differing from it in that field alone.
        init(_ base: PlasmaReply, fields: [PlasmaReply]) {
            let b = PlasmaCodec.encodeGeneric(base)
            bytes = b
            slots = fields.map { v in
                let o = PlasmaCodec.encodeGeneric(v)
                precondition(o.count == b.count, "a reply template's layout must not depend on its values")
                return zip(b, o).enumerated().first { $0.element.0 != $0.element.1 }!.offset
            }
        }

        /// A copy of the frame, its fields written by `body` through a `Filler`.
        @inline(__always)
        func fill(_ body: (inout Filler) -> Void) -> [UInt8] {
            var out = bytes
            out.withUnsafeMutableBytes { o in
                var f = Filler(out: o, slots: slots)
                body(&f)
            }
            return out
        }
    }

    /// Writes field k of a template in place (no array per field).
    struct Filler {
        let out: UnsafeMutableRawBufferPointer
        let slots: [Int]
        var k = 0

        @inline(__always) mutating func put<T: FixedWidthInteger>(_ v: T) {
            out.storeBytes(of: v.littleEndian, toByteOffset: slots[k], as: T.self)
            k += 1
        }

        @inline(__always) mutating func put(_ id: ObjectID) {
            let (w0, w1, w2) = id.words, at = slots[k]
            out.storeBytes(of: w0.littleEndian, toByteOffset: at, as: UInt64.self)
            out.storeBytes(of: w1.littleEndian, toByteOffset: at + 8, as: UInt64.self)
            out.storeBytes(of: w2.littleEndian, toByteOffset: at + 16, as: UInt32.self)
            k += 1
        }

        /// The spec struct's layout (`PlasmaObjectSpec.append`): i32, pad,
        /// u64, i64, u64, i64, i32, pad.
        @inline(__always) mutating func put(_ s: PlasmaObjectSpec) {
            s.store(into: out, at: slots[k])
            k += 1
        }
    }

    static let a = ObjectID(bytes: [UInt8](repeating: 1, count: 20))!, b = ObjectID(bytes: [UInt8](repeating: 2, count: 20))!
    static let s0 = PlasmaObjectSpec(segmentIndex: 0, dataOffset: 0, dataSize: 0, metadataOffset: 0, metadataSize: 0)
    static let s1 = PlasmaObjectSpec(segmentIndex: 1, dataOffset: 0, dataSize: 0, metadataOffset: 0, metadataSize: 0)

    static let contains = Template(.contains(a, false), fields: [.contains(b, false), .contains(a, true)])
    static let seal = Template(.seal(a, .ok), fields: [.seal(b, .ok), .seal(a, .objectExists)])
    static let create = Template(.create(a, s0, .ok, storeFD: 0, mmapSize: 0),
                                 fields: [.create(b, s0, .ok, storeFD: 0, mmapSize: 0), .create(a, s1, .ok, storeFD: 0, mmapSize: 0),
                                          .create(a, s0, .objectExists, storeFD: 0, mmapSize: 0), .create(a, s0, .ok, storeFD: 1, mmapSize: 0),
                                          .create(a, s0, .ok, storeFD: 0, mmapSize: 1)])
    /// A get of one id with no store descriptor, and with one.
    static let get0 = Template(.get([a], [s0], storeFDs: [], mmapSizes: []),
                               fields: [.get([b], [s0], storeFDs: [], mmapSizes: []), .get([a], [s1], storeFDs: [], mmapSizes: [])])
    static let get1 = Template(.get([a], [s0], storeFDs: [0], mmapSizes: [0]),
                               fields: [.get([b], [s0], storeFDs: [0], mmapSizes: [0]), .get([a], [s1], storeFDs: [0], mmapSizes: [0]),
                                        .get([a], [s0], storeFDs: [1], mmapSizes: [0]), .get([a], [s0], storeFDs: [0], mmapSizes: [1])])
    static let delete1 = Template(.delete([a], [.ok]), fields: [.delete([b], [.ok]), .delete([a], [.objectExists])])

    /// The reply's frame from a template, or nil for shapes without one.
    static func encode(_ reply: PlasmaReply) -> [UInt8]? {
        switch reply {
        case .contains(let id, let has): return contains.fill { $0.put(id); $0.put(Int32(has ? 1 : 0)) }
        case .seal(let id, let e): return seal.fill { $0.put(id); $0.put(e.rawValue) }
        case .create(let id, let spec, let e, let fd, let size):
            return create.fill { $0.put(id); $0.put(spec); $0.put(e.rawValue); $0.put(fd); $0.put(size) }
        case .get(let ids, let specs, let fds, let sizes) where ids.count == 1 && specs.count == 1 && fds.count == sizes.count && fds.count <= 1:
            if fds.isEmpty { return get0.fill { $0.put(ids[0]); $0.put(specs[0]) } }
            return get1.fill { $0.put(ids[0]); $0.put(specs[0]); $0.put(fds[0]); $0.put(sizes[0]) }
        case .delete(let ids, let errors) where ids.count == 1 && errors.count == 1:
            return delete1.fill { $0.put(ids[0]); $0.put(errors[0].rawValue) }
        default: return nil
        }
    }
}
