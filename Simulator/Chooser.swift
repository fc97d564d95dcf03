import PlenumMemory

/// Where a run's choices come from: a seeded generator (fuzzing, scenarios,
/// replay) or a script that enumerates every choice depth-first (explore).
struct Chooser {
    var rng: SplitMix64
    var script: [Int]?
    var taken: [(choice: Int, of: Int)] = []

    /// After a pruned state: no more branches (the run only winds down).
    var frozen = false

    mutating func pick(_ n: Int) -> Int {
        guard n > 1, !frozen else { return 0 }
        guard let script else { return rng.below(n) }
        let c = taken.count < script.count ? min(script[taken.count], n - 1) : 0
        taken.append((c, n))
        return c
    }

    /// The next script in depth-first order, or nil when all are done.
    func nextScript() -> [Int]? {
        var t = taken
        while let last = t.popLast() {
            if last.choice + 1 < last.of { return t.map(\.choice) + [last.choice + 1] }
        }
        return nil
    }
}

/// Bounds of an exhaustive exploration (SPEC.md §7.5).
public struct ExploreBound: Sendable, Equatable {
    public var preemptions: Int
    public var cacheEvents: Int
    public init(preemptions: Int, cacheEvents: Int) {
        self.preemptions = preemptions
        self.cacheEvents = cacheEvents
    }
}
