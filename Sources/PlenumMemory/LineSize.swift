/// The coherence line size L that every shared layout pads to (SPEC §4.4).
///
/// A parameter, not a constant: 64 bytes on x86_64 caches, 128 on POWER9
/// (the ThymesisFlow testbed), 256 allowed for safety margins. The default is
/// 128 so layouts made on x86 stay valid when mapped by a POWER node.
public struct LineSize: Hashable, Sendable, CustomStringConvertible {
    public let bytes: Int

    public static let allowed: [Int] = [64, 128, 256]
    public static let `default` = LineSize(unchecked: 128)

    /// - Throws: ``LineSizeError`` unless `bytes` is 64, 128 or 256.
    public init(_ bytes: Int) throws(LineSizeError) {
        guard LineSize.allowed.contains(bytes) else { throw LineSizeError(requested: bytes) }
        self.bytes = bytes
    }

    init(unchecked bytes: Int) { self.bytes = bytes }

    /// `value` rounded up to a multiple of the line size.
    @inlinable public func roundUp(_ value: Int) -> Int { (value + bytes - 1) & ~(bytes - 1) }

    public var description: String { "\(bytes)" }
}

public struct LineSizeError: Error, CustomStringConvertible {
    public let requested: Int
    public var description: String {
        "line size \(requested) is not supported: use 64, 128 or 256 (--line-size)"
    }
}
