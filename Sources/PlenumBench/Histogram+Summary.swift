import Histogram

/// Percentiles of a latency histogram, in nanoseconds.
public struct LatencySummary: Codable, Sendable {
    public var p50: UInt64
    public var p99: UInt64
    public var p999: UInt64
    public var min: UInt64
    public var max: UInt64
    public var mean: Double
    public var count: UInt64

    public init(_ h: Histogram<UInt64>) {
        p50 = h.valueAtPercentile(50)
        p99 = h.valueAtPercentile(99)
        p999 = h.valueAtPercentile(99.9)
        min = h.min
        max = h.max
        mean = h.mean
        count = h.totalCount
    }
}

extension Histogram where Count == UInt64 {
    /// 1 ns … 10 s at three significant digits.
    public static func latency() -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 10_000_000_000, numberOfSignificantValueDigits: .three)
    }
}
