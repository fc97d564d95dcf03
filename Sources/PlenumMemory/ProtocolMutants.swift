/// Protocol steps that can be switched off, one each, to prove the
/// coherency-fault simulator catches their absence (SPEC.md §7.4).
///
/// The switch lives on the memory seam, not in a global: ``MappedMemory``
/// always reports `[]` through the default implementation, so in release
/// builds the specialised ring code folds every check away and production
/// never carries a mutant. Only the simulator's memory type reports others.
public struct ProtocolMutants: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Producer: no flush of payload or commit lines after a post.
    public static let noFlushAfterPost = ProtocolMutants(rawValue: 1 << 0)
    /// Consumer: no invalidate of the commit/payload lines before reading.
    public static let noInvalidateBeforePoll = ProtocolMutants(rawValue: 1 << 1)
    /// Producer: no fence between the payload and the commit word.
    public static let noFenceBeforeCommit = ProtocolMutants(rawValue: 1 << 2)
    /// Layout: producer and consumer control words share one line.
    public static let sharedControlLine = ProtocolMutants(rawValue: 1 << 3)

    public static let all: [(name: String, mutant: ProtocolMutants)] = [
        ("no-flush-after-post", .noFlushAfterPost),
        ("no-invalidate-before-poll", .noInvalidateBeforePoll),
        ("no-fence-before-commit", .noFenceBeforeCommit),
        ("shared-control-line", .sharedControlLine),
    ]
}

extension SharedMemory {
    /// Production memory runs no mutant.
    @inlinable public var mutants: ProtocolMutants { [] }
}
