@testable import PlenumStore
import Testing

/// The store's LRU list against a plain array model, and the id hash the
/// store's tables use.
@Suite struct LRUListTests {
    func id(_ n: Int) -> ObjectID {
        var b = [UInt8](repeating: 0xA5, count: 20)
        b[16] = UInt8(n >> 8 & 0xFF); b[17] = UInt8(n & 0xFF)
        return ObjectID(bytes: b)!
    }

    /// Walks the list from its head, as eviction does.
    func order(_ l: LRUList) -> [ObjectID] {
        var out: [ObjectID] = []
        var next = l.head
        while let i = next, out.count <= l.count { out.append(i); next = l.after(i) }
        return out
    }

    /// SplitMix64: a seeded generator, so a failure names its seed.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ z >> 30) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ z >> 27) &* 0x94D0_49BB_1331_11EB
            return z ^ z >> 31
        }
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func randomOperationsKeepTheModelsOrderAndBytes(seed: UInt64) {
        var l = LRUList()
        var model: [(ObjectID, Int)] = []
        var rng = Seeded(state: seed)
        // Few ids at first (the list empties often), many later.
        for step in 0..<20_000 {
            let k = id(Int.random(in: 0..<(step < 5_000 ? 4 : 64), using: &rng))
            let reserved = 64 * Int.random(in: 1...8, using: &rng)
            switch Int.random(in: 0..<3, using: &rng) {
            case 0:
                l.append(k, reserved: reserved)
                if !model.contains(where: { $0.0 == k }) { model.append((k, reserved)) }
            case 1:
                l.remove(k)
                model.removeAll { $0.0 == k }
            default:
                l.touch(k)
                if let i = model.firstIndex(where: { $0.0 == k }) { model.append(model.remove(at: i)) }
            }
            #expect(l.count == model.count)
            #expect(l.bytes == model.reduce(0) { $0 + $1.1 })
            #expect(l.head == model.first?.0 && l.tail == model.last?.0)
            if step % 97 == 0 {
                #expect(order(l) == model.map(\.0), "seed \(seed), step \(step)")
                for i in 0..<64 { #expect(l.contains(id(i)) == model.contains { $0.0 == id(i) }) }
            }
        }
        for (k, _) in model { l.remove(k) }
        #expect(l.count == 0 && l.bytes == 0 && l.head == nil && l.tail == nil)
        // Emptied, it starts over cleanly.
        l.append(id(1), reserved: 64); l.append(id(2), reserved: 128)
        #expect(order(l) == [id(1), id(2)] && l.bytes == 192)
    }

    @Test func appendingAMemberAgainChangesNothing() {
        var l = LRUList()
        l.append(id(1), reserved: 64); l.append(id(2), reserved: 64)
        l.append(id(1), reserved: 999)
        #expect(order(l) == [id(1), id(2)] && l.bytes == 128 && l.count == 2)
        // Removing and appending reuses the freed slot and keeps the order.
        l.remove(id(1)); l.append(id(3), reserved: 64); l.append(id(1), reserved: 64)
        #expect(order(l) == [id(2), id(3), id(1)])
    }

    /// The table hash mixes every byte of the id into the low bits a hash
    /// table indexes by: ids that differ in only two bytes, at the start, in
    /// the middle or at the end, spread over buckets — under several table
    /// seeds, which key the hash as the process key does.
    @Test func theIdHashSpreadsIdsThatDifferInFewBytes() {
        for seed in [7, 0, -1, 1 << 40, Int.random(in: .min ... .max)] {
            for position in [0, 9, 18] {
                var buckets = Set<Int>()
                for n in 0..<4096 {
                    var b = [UInt8](repeating: 0x11, count: 20)
                    b[position] = UInt8(n >> 8); b[position + 1] = UInt8(n & 0xFF)
                    buckets.insert(ObjectID(bytes: b)!._rawHashValue(seed: seed) & 4095)
                }
                // A uniform hash fills about 63% of 4096 buckets with 4096 keys (±30).
                #expect(buckets.count > 2300, "seed \(seed), bytes \(position), \(position + 1): \(buckets.count) of 4096 buckets")
            }
        }
        // The table's seed changes the hash (tables copied into each other
        // must not share an order).
        #expect(id(5)._rawHashValue(seed: 1) != id(5)._rawHashValue(seed: 2))
    }
}
