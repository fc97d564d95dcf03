import PlenumMemory
import PlenumStore

/// A read-only, zero-copy view of a sealed object, valid until `release`.
public final class ObjectBuffer {
    public let id: ObjectID
    public let location: ObjectLocation
    let memory: MappedMemory
    public internal(set) var isReleased = false

    /// Invariant 4 (SPEC §2) asks a node that did not write an object to
    /// invalidate its range before the first read. Objects of this node were
    /// written in this cache domain; an object in a peer's memory was
    /// invalidated and its digest checked by this node's store before the
    /// reference was granted (SPEC §10.8), and this client shares that
    /// store's cache. The caller checked `location` lies inside `memory`.
    init(id: ObjectID, location: ObjectLocation, memory: MappedMemory) {
        assert(location.end <= memory.size)
        self.id = id
        self.location = location
        self.memory = memory
    }

    /// Which region the bytes are in (0: the store's own; SPEC §10.7).
    public var region: Int { location.region }

    public func withData<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard !isReleased else { throw ClientError.released(id) }
        return try memory.read(at: location.offset, count: location.dataSize) { try body($0) }
    }

    public func withMetadata<R>(_ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        guard !isReleased else { throw ClientError.released(id) }
        return try memory.read(at: location.metadataOffset, count: location.metadataSize) { try body($0) }
    }

    public var data: [UInt8] { get throws { try withData { Array($0) } } }
}
