import PlenumCluster
import PlenumStore

/// `count` ids whose home among `live` is `home` (SPEC §10.4), for
/// benchmarks and profiles: bytes 0–11 `fill`, bytes 12–19 a counter
/// (big-endian), the first counters that hash there.
func idsHomed(at home: NodeID, among live: [NodeID], count: Int, fill: UInt8) -> [ObjectID] {
    var ids: [ObjectID] = []
    var k: UInt64 = 0
    while ids.count < count {
        k += 1
        var b = [UInt8](repeating: fill, count: 20)
        withUnsafeBytes(of: k.bigEndian) { for i in 0..<8 { b[12 + i] = $0[i] } }
        let id = ObjectID(bytes: b)!
        if Home.of(id, among: live) == home { ids.append(id) }
    }
    return ids
}
