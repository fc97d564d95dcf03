import PlenumMemory
import PlenumStore
import PlenumWire

/// Why a client call failed. Each says what to do.
public enum ClientError: Error, CustomStringConvertible {
    case connect(SystemCallError)
    case protocolError(WireError)
    case remote(RemoteError)
    case closed
    case released(ObjectID)
    case unexpected(String)
    /// A location outside every region this client maps.
    case badLocation(ObjectLocation)
    /// A write through a client that connected with `.readOnly`.
    case readOnly

    public var description: String {
        switch self {
        case .connect(let e): return "cannot reach the store: \(e); is `plenum store` running on that socket?"
        case .protocolError(let e): return "the store sent a malformed frame: \(e)"
        case .remote(let e): return e.message
        case .closed: return "the store closed the connection"
        case .released(let id): return "object \(id) was released: get it again to read it"
        case .readOnly: return "this client connected read-only: connect with access .readWrite to create objects"
        case .unexpected(let s): return "unexpected reply: \(s)"
        case .badLocation(let l): return "the store named bytes outside its regions (region \(l.region), offset \(l.offset), \(l.end - l.offset) bytes): a store bug or a corrupt peer"
        }
    }
}
