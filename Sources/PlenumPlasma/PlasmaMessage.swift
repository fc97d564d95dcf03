import PlenumStore

/// Plasma 11's message types (plasma.fbs `MessageType`, an int64 on the wire).
public enum PlasmaType: Int64, Sendable {
    case disconnectClient = 0
    case createRequest, createReply, createAndSealRequest, createAndSealReply
    case abortRequest, abortReply, sealRequest, sealReply
    case getRequest, getReply, releaseRequest, releaseReply
    case deleteRequest, deleteReply, containsRequest, containsReply
    case listRequest, listReply, connectRequest, connectReply
    case evictRequest, evictReply, subscribeRequest, unsubscribeRequest
    case dataRequest, dataReply, notification
    case setOptionsRequest, setOptionsReply, getDebugStringRequest, getDebugStringReply
    case createAndSealBatchRequest, createAndSealBatchReply, refreshLRURequest, refreshLRUReply
}

/// Plasma's error codes (plasma.fbs `PlasmaError`, an int32).
public enum PlasmaError: Int32, Sendable {
    case ok = 0, objectExists, objectNonexistent, outOfMemory, objectNotSealed, objectInUse

    /// The Plasma code for a store error (SPEC §11.4).
    public init(_ e: StoreError) {
        switch e {
        case .alreadyExists: self = .objectExists
        case .notFound, .noReference, .notCreator, .unknownClient, .nodeUnavailable, .digestMismatch, .remote: self = .objectNonexistent
        case .tooLarge, .outOfMemory, .fragmented, .invalidSize, .tooManyIds, .tooManyWaiting: self = .outOfMemory
        case .notSealed: self = .objectNotSealed
        case .inUse, .alreadySealed: self = .objectInUse
        }
    }
}

/// One object of a create-and-seal request.
public struct PlasmaInlineObject: Equatable, Sendable {
    public var id: ObjectID
    public var data: [UInt8]
    public var metadata: [UInt8]
    public init(id: ObjectID, data: [UInt8], metadata: [UInt8]) { self.id = id; self.data = data; self.metadata = metadata }
}

/// What a Plasma client asks (SPEC §11.3).
public enum PlasmaRequest: Equatable, Sendable {
    case connect
    case create(ObjectID, evictIfFull: Bool, dataSize: Int64, metadataSize: Int64, deviceNum: Int32)
    case createAndSeal([PlasmaInlineObject], batch: Bool)
    case abort(ObjectID)
    case seal(ObjectID)
    case get([ObjectID], timeoutMs: Int64)
    case release(ObjectID)
    case delete([ObjectID])
    case contains(ObjectID)
    case list
    case evict(bytes: UInt64)
    case subscribe
    case setOptions(clientName: [UInt8], outputMemoryQuota: Int64)
    case debugString
    case refreshLRU([ObjectID])
    case disconnect
    /// A message type Plasma 11's store does not serve either (replies, the
    /// removed manager messages): the connection is closed.
    case unsupported(PlasmaType)
}

/// A Plasma object as its replies describe it (plasma.fbs `PlasmaObjectSpec`,
/// 48 bytes): offsets into the mapping of `storeFD`.
public struct PlasmaObjectSpec: Equatable, Sendable {
    public var segmentIndex: Int32
    public var dataOffset: UInt64
    public var dataSize: Int64
    public var metadataOffset: UInt64
    public var metadataSize: Int64
    public var deviceNum: Int32

    public init(segmentIndex: Int32, dataOffset: UInt64, dataSize: Int64, metadataOffset: UInt64, metadataSize: Int64, deviceNum: Int32 = 0) {
        self.segmentIndex = segmentIndex
        self.dataOffset = dataOffset
        self.dataSize = dataSize
        self.metadataOffset = metadataOffset
        self.metadataSize = metadataSize
        self.deviceNum = deviceNum
    }

    /// What a get reply says of an object it does not return.
    /// (Plasma's store: data size −1, every other field 0.)
    public static let missing = PlasmaObjectSpec(segmentIndex: 0, dataOffset: 0, dataSize: -1, metadataOffset: 0, metadataSize: 0)

    public static let size = 48

    /// Little-endian struct bytes: i32, pad 4, u64, i64, u64, i64, i32, pad 4.
    public var bytes: [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.size)
        b.withUnsafeMutableBytes { store(into: $0, at: 0) }
        return b
    }

    /// Writes the struct's bytes at `at` (the pads are left as they are).
    ///
    /// ```
    ///  0 i32 segment_index │ 4 pad │ 8 u64 data_offset │ 16 i64 data_size │ 24 u64 metadata_offset
    ///  32 i64 metadata_size │ 40 i32 device_num │ 44 pad │ 48
    /// ```
    @inline(__always)
    func store(into out: UnsafeMutableRawBufferPointer, at: Int) {
        precondition(at >= 0 && at <= out.count - Self.size, "a spec at \(at) outside [0, \(out.count))")
        out.storeBytes(of: segmentIndex.littleEndian, toByteOffset: at, as: Int32.self)
        out.storeBytes(of: dataOffset.littleEndian, toByteOffset: at + 8, as: UInt64.self)
        out.storeBytes(of: dataSize.littleEndian, toByteOffset: at + 16, as: Int64.self)
        out.storeBytes(of: metadataOffset.littleEndian, toByteOffset: at + 24, as: UInt64.self)
        out.storeBytes(of: metadataSize.littleEndian, toByteOffset: at + 32, as: Int64.self)
        out.storeBytes(of: deviceNum.littleEndian, toByteOffset: at + 40, as: Int32.self)
    }

    public init(bytes s: ArraySlice<UInt8>) {
        let b = Array(s)
        func get<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T {
            (0..<MemoryLayout<T>.size).reduce(T.zero) { $0 | T(truncatingIfNeeded: b[at + $1]) << (8 * $1) }
        }
        segmentIndex = get(0, Int32.self)
        dataOffset = get(8, UInt64.self)
        dataSize = get(16, Int64.self)
        metadataOffset = get(24, UInt64.self)
        metadataSize = get(32, Int64.self)
        deviceNum = get(40, Int32.self)
    }
}

/// A row of list replies and notifications (common.fbs `ObjectInfo`).
public struct PlasmaObjectInfo: Equatable, Sendable {
    public var id: ObjectID
    public var dataSize: Int64
    public var metadataSize: Int64
    public var refCount: Int32
    /// Seconds since the epoch.
    public var createTime: Int64
    /// Seconds from create to seal; −1 while unsealed.
    public var constructDuration: Int64
    public var digest: [UInt8]
    public var isDeletion: Bool

    public init(id: ObjectID, dataSize: Int64, metadataSize: Int64, refCount: Int32 = 0, createTime: Int64 = 0,
                constructDuration: Int64 = 0, digest: [UInt8] = [], isDeletion: Bool = false) {
        self.id = id
        self.dataSize = dataSize
        self.metadataSize = metadataSize
        self.refCount = refCount
        self.createTime = createTime
        self.constructDuration = constructDuration
        self.digest = digest
        self.isDeletion = isDeletion
    }

    var fields: [FlatBufferWriter.Value?] {
        [.string(id.bytes), .i64(dataSize), .i64(metadataSize), .i32(refCount), .i64(createTime), .i64(constructDuration),
         .string(digest), .u8(isDeletion ? 1 : 0)]
    }
}

/// What the store answers (SPEC §11.3). Release and subscribe have none.
public enum PlasmaReply: Equatable, Sendable {
    case connect(memoryCapacity: Int64)
    case create(ObjectID, PlasmaObjectSpec, PlasmaError, storeFD: Int32, mmapSize: Int64)
    case createAndSeal(PlasmaError, batch: Bool)
    case abort(ObjectID)
    case seal(ObjectID, PlasmaError)
    /// Every requested id with its spec (`.missing` when not returned), and
    /// the store descriptors the specs name with their mapping sizes.
    case get([ObjectID], [PlasmaObjectSpec], storeFDs: [Int32], mmapSizes: [Int64])
    case delete([ObjectID], [PlasmaError])
    case contains(ObjectID, Bool)
    case list([PlasmaObjectInfo])
    case evict(bytes: UInt64)
    case setOptions(PlasmaError)
    case debugString([UInt8])
    case refreshLRU
}
