/// Errors of ring creation, attachment and posting. Each says what to do.
public enum RingError: Error, CustomStringConvertible, Equatable {
    case badGeometry(String)
    case messageTooLarge(length: Int, maxPayload: Int)
    case notARing(reason: String)
    case tooSmall(segment: Int, needed: Int)
    case lineSizeMismatch(ring: Int, memory: Int)
    case corruptPeer(String)

    public var description: String {
        switch self {
        case .badGeometry(let why): return "bad ring geometry: \(why)"
        case .messageTooLarge(let n, let max):
            return "message of \(n) bytes exceeds the ring's \(max)-byte payload limit: put bulk data in an object and send its id, or create the ring with a larger --slot-size"
        case .notARing(let why): return "not a Plenum ring (\(why)): format it with `plenum ring create`"
        case .tooSmall(let have, let need): return "segment of \(have) bytes cannot hold a ring of \(need) bytes: fewer or smaller slots"
        case .lineSizeMismatch(let r, let m): return "ring was laid out for \(r)-byte lines but the region uses \(m): recreate the ring"
        case .corruptPeer(let why): return "peer state in shared memory is corrupt (\(why)): reset the ring (epoch handshake)"
        }
    }
}
