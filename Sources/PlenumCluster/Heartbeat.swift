import PlenumMemory

/// A node's heartbeat line in a link block (SPEC §10.3 "Heartbeat line"):
/// published by the block's producer each tick, observed by its consumer.
/// Used by the daemon's links and by the simulator's cluster scenario.
public struct Heartbeat: Equatable, Sendable {
    public static let flagSubscribers: UInt64 = 1
    public var beat: UInt64
    public var incarnation: UInt64
    public var capacity: Int
    public var used: Int
    public var objects: Int
    public var largestFree: Int
    public var flags: UInt64

    public init(beat: UInt64, incarnation: UInt64, capacity: Int, used: Int, objects: Int, largestFree: Int, flags: UInt64) {
        self.beat = beat
        self.incarnation = incarnation
        self.capacity = capacity
        self.used = used
        self.objects = objects
        self.largestFree = largestFree
        self.flags = flags
    }

    public var load: PeerLoad {
        PeerLoad(capacity: capacity, used: used, objects: objects, largestFree: largestFree, subscribers: flags & Self.flagSubscribers != 0)
    }

    /// Publish (writer: the producer p, SPEC §10.3): fields and CRC, then
    /// the beat (releasing: it orders the field stores, which share its
    /// granule, so a write-back carrying the new beat carries them);
    /// flush the line; fence(.store).
    public func publish<M: SharedMemory>(at offset: Int, in m: M) {
        m.write(at: offset + 8, count: 52) { b in
            b.storeBytes(of: incarnation.littleEndian, toByteOffset: 0, as: UInt64.self)
            for (i, v) in [capacity, used, objects, largestFree].enumerated() {
                b.storeBytes(of: Int64(v).littleEndian, toByteOffset: 8 + 8 * i, as: Int64.self)
            }
            b.storeBytes(of: flags.littleEndian, toByteOffset: 40, as: UInt64.self)
            var head = [UInt8](repeating: 0, count: 56)
            withUnsafeBytes(of: beat.littleEndian) { for i in 0..<8 { head[i] = $0[i] } }
            for i in 0..<48 { head[8 + i] = b[i] }
            let crc = head.withUnsafeBytes { CRC32C.checksum($0) }
            b.storeBytes(of: crc.littleEndian, toByteOffset: 48, as: UInt32.self)
        }
        m.store64(beat, at: offset, ordering: .releasing)
        m.flush(at: offset, count: 64)
        m.fence(.store)
    }

    /// Observe (reader: the consumer c): invalidate the line (never written
    /// here, so a pure invalidate, SPEC §3.3); fence(.full); read; verify
    /// the CRC. nil when never written or torn (read again next tick).
    public static func read<M: SharedMemory>(at offset: Int, in m: M) -> Heartbeat? {
        m.invalidate(at: offset, count: 64)
        m.fence(.full)
        return m.read(at: offset, count: 60) { b -> Heartbeat? in
            let crc = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 56, as: UInt32.self))
            guard crc == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<56])) else { return nil }
            func i(_ o: Int) -> Int { Int(Int64(littleEndian: b.loadUnaligned(fromByteOffset: o, as: Int64.self))) }
            let beat = UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
            let inc = UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            guard beat > 0, inc > 0 else { return nil }
            return Heartbeat(beat: beat, incarnation: inc, capacity: i(16), used: i(24), objects: i(32), largestFree: i(40),
                             flags: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 48, as: UInt64.self)))
        }
    }
}
