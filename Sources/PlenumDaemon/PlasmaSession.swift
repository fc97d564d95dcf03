#if canImport(Glibc)
import Glibc
#endif
import PlenumPlasma
import PlenumStore

/// What the store keeps per Plasma client (SPEC §11): the requests it sent
/// to the core on the client's behalf, the references it holds, and the
/// store descriptors the client has already received.
///
/// Plasma counts a client's references as a set (one per client per object,
/// however many gets), and the client sends one release when its own count
/// reaches zero; the core counts every get. So a session keeps at most one
/// core reference per object and releases any extra at once.
final class PlasmaSession {
    /// Why a core request was made: what to answer when its reply arrives.
    enum Pending {
        case create(ObjectID)
        case seal(ObjectID)
        /// The creator's reference after its seal (Plasma's creator keeps one).
        case pin(ObjectID)
        case get([ObjectID])
        /// One part of a get of more ids than a store request carries: the
        /// ids from `offset` of big get `token`.
        case getPart(token: UInt64, offset: Int)
        case contains(ObjectID)
        case delete([ObjectID])
        case abort(ObjectID)
        case list
        case evict
        case refresh
        case createAndSeal(batch: Bool)
        /// Answered to the core only (release, subscribe): nothing to send.
        case silent
    }

    var nextRequest: UInt64 = 1
    var pending: [UInt64: Pending] = [:]
    /// Core references held, per object (1 normally; more only until the
    /// extra ones' releases are sent).
    var held: [ObjectID: Int] = [:]
    /// Objects this client created and has not sealed: where they are.
    var created: [ObjectID: ObjectLocation] = [:]
    /// Pins in flight, and the ones released before they completed.
    var pinning: Set<ObjectID> = []
    var releasedWhilePinning: Set<ObjectID> = []
    /// Gets of more ids than one store request carries (Plasma has no
    /// limit): split into parts, answered once every part has been.
    struct BigGet {
        var ids: [ObjectID]
        var locations: [ObjectLocation?]
        var partsLeft: Int
    }
    var bigGets: [UInt64: BigGet] = [:]
    var nextBigGet: UInt64 = 1
    /// `store_fd` values whose descriptor this client has.
    var sentStoreFDs: Set<Int32> = []
    /// Descriptors received (SCM_RIGHTS) and not yet claimed by a subscribe.
    var receivedFDs: [Int32] = []
    /// A subscribe request was read; its descriptor's byte comes next.
    var awaitingSubscriberFD = false
    /// The connection id of this client's notification socket.
    var subscriber: UInt64?

    func track(_ p: Pending) -> UInt64 {
        let rid = nextRequest
        nextRequest += 1
        pending[rid] = p
        return rid
    }

    deinit { for fd in receivedFDs { close(fd) } }
}
