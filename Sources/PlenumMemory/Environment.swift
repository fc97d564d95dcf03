#if canImport(Glibc)
import Glibc
#endif

/// A non-negative integer from the environment (tuning knobs for
/// experiments), or nil when unset or not a number.
public func envNumber(_ name: String) -> UInt64? {
    guard let v = getenv(name) else { return nil }
    return UInt64(String(cString: v))
}
