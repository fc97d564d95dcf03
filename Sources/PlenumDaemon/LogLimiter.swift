import Logging

/// Aggregates repeated warnings so that logs stay small under attack
/// (SPEC §9.4 "Limits"): per key (one kind of trouble of one client or
/// peer), the first occurrence in each interval is logged with how many
/// were suppressed since the last line; the others are only counted.
///
/// ```
///   t=0   warn(k) → logged                      t=0.1 … 9.9 warn(k) ×N → counted
///   t=10+ warn(k) → logged "(N more since the last line)"
/// ```
struct LogLimiter {
    let interval: UInt64
    /// Keys beyond this are forgotten wholesale (a flood of distinct keys
    /// must not grow the table either).
    static let maxKeys = 4096
    private var last: [String: (at: UInt64, suppressed: Int)] = [:]

    init(intervalNanos: UInt64 = 10_000_000_000) { interval = intervalNanos }

    /// Whether to log now, and how many of this key were suppressed since
    /// the last line that was logged.
    mutating func admit(_ key: String, now: UInt64) -> (log: Bool, suppressed: Int) {
        if let l = last[key], now &- l.at < interval {
            last[key]!.suppressed += 1
            return (false, 0)
        }
        if last.count >= Self.maxKeys { last.removeAll() }
        let suppressed = last[key]?.suppressed ?? 0
        last[key] = (now, 0)
        return (true, suppressed)
    }

    /// Logs `message` at warning level under `key`, unless limited.
    mutating func warning(_ logger: Logger, key: String, _ message: @autoclosure () -> String,
                          metadata: Logger.Metadata = [:], now: UInt64) {
        let (log, suppressed) = admit(key, now: now)
        guard log else { return }
        var m = metadata
        if suppressed > 0 { m["suppressed_since_last"] = "\(suppressed)" }
        logger.warning("\(message())", metadata: m)
    }
}
