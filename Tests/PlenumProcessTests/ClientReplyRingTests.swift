import Foundation
@testable import PlenumClient
import PlenumMemory
import PlenumRing
import PlenumStore
import Testing

/// What a client does with a reply ring that breaks SPEC §9.6: a clear
/// error from the call that was waiting, no crash, no hang; the store
/// serves its other clients on.
@Suite(.serialized) struct ClientReplyRingTests {
    /// Commits one message into c's reply ring at the sequence the client
    /// expects next, as a producer would (SPEC §5.3), before the store posts
    /// there: kind `kind`, no payload, and a CRC32C that is right unless
    /// `badChecksum`.
    static func inject(into c: PlenumClient, kind: UInt16, badChecksum: Bool) throws {
        let r = try #require(c.replies)
        let m = try #require(c.ringMemory)
        let seq = r.consumed + 1
        let slot = r.layout.slotOffset(sequence: seq)
        var header = [UInt8](repeating: 0, count: RingLayout.slotHeaderBytes)
        header.withUnsafeMutableBytes { h in
            // The checksum covers the commit word too (SPEC §5.3).
            h.storeBytes(of: seq.littleEndian, toByteOffset: 0, as: UInt64.self)
            h.storeBytes(of: UInt32(truncatingIfNeeded: r.epoch).littleEndian, toByteOffset: RingLayout.sEpoch, as: UInt32.self)
            h.storeBytes(of: kind.littleEndian, toByteOffset: RingLayout.sKind, as: UInt16.self)
            var crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: h[0..<RingLayout.sCRC]))
            crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: h[RingLayout.sRequest...]), seed: crc)
            h.storeBytes(of: (badChecksum ? ~crc : crc).littleEndian, toByteOffset: RingLayout.sCRC, as: UInt32.self)
        }
        m.write(at: slot + 8, count: header.count - 8) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: header.withUnsafeBytes { $0 }[8...])) }
        m.fence(.store)
        m.store64(seq, at: slot, ordering: .releasing)
        m.fence(.store)
    }

    @Test(arguments: [(UInt16(9), false, "kind 9"), (UInt16(1), true, "CRC32C")])
    func aBrokenReplyRingMessageFailsTheCallClearly(kind: UInt16, badChecksum: Bool, named: String) throws {
        let store = try RunningStore()
        let c = try store.client()
        let id = oid(n: 42)
        try c.put(id, data: [1, 2, 3])
        #expect(c.usesRings)
        try Self.inject(into: c, kind: kind, badChecksum: badChecksum)
        // Waiting for a frame, as a call does after its request; no request
        // is sent, so no real reply can take the injected message's slot.
        do {
            _ = try c.next()
            Issue.record("the broken message went unnoticed")
        } catch let e {
            guard case .unexpected(let why) = e else { Issue.record("\(e)"); return }
            #expect(why.contains("reply ring") && why.contains(named), "\(why)")
        }
        // The store is unharmed: another client is served.
        let other = try store.client()
        #expect(try other.contains(id))
        #expect(store.stop() == 0)
    }
}
