import Foundation
@testable import PlenumClient
import PlenumStore
import PlenumWire
import Testing

/// The default client path (SPEC §9.6): rings from the start, frames longer
/// than a slot in pieces, quiet releases, sleeping clients woken by the store.
@Suite(.serialized) struct ClientRingPathTests {
    static func ids(_ n: Int, base: Int) -> [ObjectID] { (0..<n).map { oid(n: base + $0) } }

    /// A get of 4,096 ids (an 82 kB request, a 168 kB reply — both longer
    /// than the 64-slot ring) travels in shared memory: no frame comes by
    /// the socket, and every location is right.
    @Test func aBatchedGetOf4096IdsNeverFallsBackToTheSocket() throws {
        let store = try RunningStore()
        let c = try store.client()
        #expect(c.usesRings, "rings are the default")
        let ids = Self.ids(4096, base: 1_000_000)
        var batch: [Wire.InlineObject] = []
        for (i, id) in ids.enumerated() { batch.append(.init(id: id, data: [UInt8(truncatingIfNeeded: i), UInt8(truncatingIfNeeded: i >> 8)])) }
        // Frames by the socket (wakes are futex wakes, not frames: SPEC §9.6).
        func replies() -> Int { c.framesBySocket }
        let before = replies()
        #expect(try c.createAndSeal(batch).allSatisfy { $0 == nil }, "a 45 kB create-and-seal, in pieces")
        let buffers = try c.get(ids, timeoutMs: 0)
        #expect(replies() == before, "\(replies() - before) replies came by the socket")
        #expect(buffers.count == 4096)
        for (i, b) in buffers.enumerated() {
            #expect(try b?.data == [UInt8(truncatingIfNeeded: i), UInt8(truncatingIfNeeded: i >> 8)], "object \(i)")
        }
        // A reply of about 400 kB comes by the ring too.
        #expect(try c.list().count == 4096)
        #expect(replies() == before)
        try c.release(buffers.compactMap { $0 })
        #expect(try c.delete(ids).allSatisfy { $0 == nil }, "every reference was released before the delete")
        #expect(store.stop() == 0)
    }

    /// A quiet release is applied before the same client's next request,
    /// ring or socket; a second release of the buffer is refused here; a
    /// quiet release the store refuses leaves no stray reply behind.
    @Test func quietReleasesAreOrderedAndLeaveNoStrayReply() throws {
        let store = try RunningStore()
        for rings in [true, false] {
            let c = try store.client(rings: rings)
            let id = oid(n: rings ? 7001 : 7002)
            try c.put(id, data: [1, 2, 3])
            for _ in 0..<200 {
                let b = try #require(try c.get([id], timeoutMs: 0).first ?? nil)
                try c.release(b)
                #expect(throws: ClientError.self) { try c.release(b) }
            }
            #expect(try c.delete([id]) == [nil], "rings \(rings): the last release was applied first")
            // Releasing what this client does not hold: nothing answers, and
            // the next request gets its own reply (read raw: the client's
            // own calls drop a stray reply unseen).
            try c.send(Wire.encodeReleaseQuietly([oid(n: 7003)], requestId: 9_000))
            try c.send(Wire.encode(.stats, requestId: 9_001))
            var first: UInt64?
            while first == nil { if case .reply(let r, _) = try c.next() { first = r } }
            #expect(first == 9_001, "rings \(rings): the refused quiet release was answered")
            #expect(try c.contains(oid(n: 7003)) == false)
            #expect(try c.stats().objects == 0)
        }
        #expect(store.stop() == 0)
    }

    /// A client blocked in a long get sleeps (its sleeping word set), and
    /// the store's post of the reply wakes it (a futex wake on its wake word). The object
    /// is put only once the waiter's word is set (the event, not a delay),
    /// and the waiter's safety timeout is out of reach, so only the store's
    /// wake can end its sleep: a store that forgot the wake fails here.
    @Test func aSleepingClientIsWokenByTheStore() throws {
        let store = try RunningStore()
        let waiter = try store.client()
        waiter.sleepPollMs = 120_000
        let memory = try #require(waiter.ringMemory), word = waiter.sleepWord
        let id = oid(n: 8001), socket = store.socket
        let asleep = Flag()
        let sealed = Thread {
            // The store's own read of the word (SPEC §9.6): invalidate, load.
            if eventually(120, {
                memory.invalidate(at: word, count: 8)
                return memory.load64(at: word, ordering: .acquiring) != 0
            }) { asleep.set() }
            try? PlenumClient(socketPath: socket).put(id, data: [42])
        }
        sealed.start()
        let got = try waiter.get([id], timeoutMs: 300_000)
        #expect(asleep.isSet, "the waiter never published its sleeping word")
        #expect(try got.first??.data == [42])
        #expect(waiter.sleepCount >= 1)
        #expect(waiter.wakes >= 1, "the store's wake ended the sleep")
        while !sealed.isFinished { usleep(10_000) }
        #expect(store.stop() == 0)
    }

    /// SPEC §9.6 "Requests in flight": many requests posted before any
    /// reply is read; a call made meanwhile gets its own reply; every
    /// submitted request gets its own answer, once.
    @Test func manyRequestsInFlightGetTheirOwnReplies() throws {
        let store = try RunningStore()
        for rings in [true, false] {
            let c = try store.client(rings: rings)
            let present = Self.ids(100, base: rings ? 9_000 : 9_500)
            let absent = Self.ids(100, base: rings ? 10_000 : 10_500)
            for id in present { try c.put(id, data: [1]) }
            var tickets: [(PlenumClient.Ticket, Bool)] = []
            for (p, a) in zip(present, absent) {
                tickets.append((try c.submit(.contains(p)), true))
                tickets.append((try c.submit(.contains(a)), false))
            }
            #expect(c.requestsInFlight == 200)
            // A synchronous call with 200 requests in flight: its own reply.
            #expect(try c.stats().objects >= 100)
            for (t, expected) in tickets.reversed() {
                guard case .contains(let found) = try c.wait(t) else { Issue.record("not a contains reply"); continue }
                #expect(found == expected, "rings \(rings), request \(t.requestId)")
            }
            #expect(c.requestsInFlight == 0)
            #expect(throws: ClientError.self) { try c.wait(tickets[0].0) }
            #expect(try c.contains(present + absent, window: 7) == present.map { _ in true } + absent.map { _ in false })
            #expect(try c.delete(present).allSatisfy { $0 == nil })
        }
        #expect(store.stop() == 0)
    }
}
