/// An array kept between calls for its capacity (an event's actions, a
/// poll's events): `takeForReuse` hands it out empty and leaves this one
/// empty, so a nested call made before the caller puts it back gets a fresh
/// array instead of the one in use.
///
/// ```
///   var a = spare.takeForReuse()   // spare: []      a: emptied, capacity kept
///   … fill a, use it …             // a nested call: spare.takeForReuse() → new array
///   spare = a                      // kept for the next call
/// ```
extension Array {
    @inlinable
    public mutating func takeForReuse() -> [Element] {
        var taken = self
        self = []
        taken.removeAll(keepingCapacity: true)
        return taken
    }
}
