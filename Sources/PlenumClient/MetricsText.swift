/// Reading a store's metrics (SPEC §10.9 "Metrics"): the samples of a
/// Prometheus text exposition, for tools and tests.
public enum MetricsText {
    /// `name{labels}` (or `name`) → value; comments and malformed lines are skipped.
    public static func samples(_ text: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...]) else { continue }
            out[String(line[..<space])] = v
        }
        return out
    }
}
