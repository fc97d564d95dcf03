/// What the checkers report (SPEC.md §7.3).
public struct Violation: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case staleRead = "stale-read"
        case twoDirty = "two-dirty"
        case wrongWriter = "wrong-writer"
        case checksum
        case lost, duplicated, reordered, mismatch
        case outOfBounds = "out-of-bounds"
        case unreachable
        case protocolError = "protocol-error"
        // cluster (SPEC §7.3)
        case duplicateId = "duplicate-id"
        case freedWhileReferenced = "freed-while-referenced"
        case staleObject = "stale-object"
        case useAfterRelease = "use-after-release"
        case leak
        // liveness (SPEC §7.3 "Liveness")
        case stalled
    }
    public var kind: Kind
    public var step: Int
    public var node: Int
    public var line: Int
    public var detail: String
    public var description: String { "\(kind.rawValue) at step \(step), node \(node), line \(line): \(detail)" }
}
