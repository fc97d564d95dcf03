/// Protocol steps that can be switched off, one each, to prove the
/// coherency-fault simulator catches their absence (SPEC.md §7.4).
///
/// The switch lives on the memory seam, not in a global: ``MappedMemory``
/// always reports `[]` through the default implementation, so in release
/// builds the specialised ring code folds every check away and production
/// never carries a mutant. Only the simulator's memory type reports others;
/// the store-level mutants reach the store and cluster cores through their
/// configuration, which production never sets.
public struct ProtocolMutants: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    // Ring (§5.3, §5.4)
    /// Producer: no flush of payload or commit lines after a post.
    public static let noFlushAfterPost = ProtocolMutants(rawValue: 1 << 0)
    /// Consumer: no invalidate of the commit/payload lines before reading.
    public static let noInvalidateBeforePoll = ProtocolMutants(rawValue: 1 << 1)
    /// Producer: no fence between the payload and the commit word (both of
    /// the fences around the payload flush).
    public static let noFenceBeforeCommit = ProtocolMutants(rawValue: 1 << 2)
    /// Layout: producer and consumer control words share one line.
    public static let sharedControlLine = ProtocolMutants(rawValue: 1 << 3)
    /// Consumer: acknowledges a message once its commit word is seen, before
    /// invalidating and reading the payload (§5.4 step 6 moved before 4–5).
    public static let ackBeforeRead = ProtocolMutants(rawValue: 1 << 4)
    /// Producer: flushes only the first payload granule beyond the header's.
    public static let partialPayloadFlush = ProtocolMutants(rawValue: 1 << 5)
    /// Producer: only the fence after the payload flush is dropped (§5.3
    /// step 4), the narrower form of `noFenceBeforeCommit`.
    public static let noFenceAfterPayloadFlush = ProtocolMutants(rawValue: 1 << 6)
    /// Resume (§5.6): a restarted producer starts after the consumer's
    /// acknowledgement without scanning the slots committed after it.
    public static let resumeWithoutScan = ProtocolMutants(rawValue: 1 << 7)
    /// Producer: a ring it finds full by its cached acknowledgement stays
    /// full — it never re-reads the consumer line (§5.3 "full"). Nothing is
    /// read wrong and nothing posted is lost: the messages are just never
    /// posted, a stall only the liveness checker (§7.3) reports.
    public static let fullRingNeverRechecked = ProtocolMutants(rawValue: 1 << 13)

    // Store and cluster (§9, §10)
    /// The owner frees (delete, evict) an object that only peers reference.
    public static let freeDespiteRemoteReferences = ProtocolMutants(rawValue: 1 << 8)
    /// A reader's store skips the invalidate before the first read of a
    /// peer's object (§10.8): it may read a reused range from its cache.
    public static let noInvalidateOnAcquire = ProtocolMutants(rawValue: 1 << 9)
    /// A client sends release before it has finished reading the object.
    public static let releaseBeforeRead = ProtocolMutants(rawValue: 1 << 10)
    /// A writer seals without flushing the object's bytes from its cache.
    public static let sealWithoutFlush = ProtocolMutants(rawValue: 1 << 11)
    /// A peer reads a home's directory index without invalidating the
    /// bucket first (§10.4 "Directory index"): it may answer from its cache.
    public static let indexReadWithoutInvalidate = ProtocolMutants(rawValue: 1 << 12)

    /// Every mutant of the ring, run by the ring scenarios.
    public static let ring: [(name: String, mutant: ProtocolMutants)] = [
        ("no-flush-after-post", .noFlushAfterPost),
        ("no-invalidate-before-poll", .noInvalidateBeforePoll),
        ("no-fence-before-commit", .noFenceBeforeCommit),
        ("shared-control-line", .sharedControlLine),
        ("ack-before-read", .ackBeforeRead),
        ("partial-payload-flush", .partialPayloadFlush),
        ("no-fence-after-payload-flush", .noFenceAfterPayloadFlush),
        ("resume-without-scan", .resumeWithoutScan),
        ("full-ring-never-rechecked", .fullRingNeverRechecked),
    ]

    /// Every mutant of the store and cluster, run by the cluster scenario.
    public static let store: [(name: String, mutant: ProtocolMutants)] = [
        ("free-despite-remote-references", .freeDespiteRemoteReferences),
        ("no-invalidate-on-acquire", .noInvalidateOnAcquire),
        ("release-before-read", .releaseBeforeRead),
        ("seal-without-flush", .sealWithoutFlush),
        ("index-read-without-invalidate", .indexReadWithoutInvalidate),
    ]

    public static var all: [(name: String, mutant: ProtocolMutants)] { ring + store }
}

extension SharedMemory {
    /// Production memory runs no mutant.
    @inlinable public var mutants: ProtocolMutants { [] }
}
