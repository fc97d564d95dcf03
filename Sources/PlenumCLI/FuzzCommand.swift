import ArgumentParser
import Foundation
import PlenumCluster
import PlenumMemory
import PlenumRing
import PlenumStore
import PlenumWire

/// `plenum fuzz`: mutation fuzzing of every decoder that reads bytes a peer
/// or client controls — client frames (requests, replies, the greeting),
/// Plasma frames (SPEC §11),
/// peer messages, and ring slots and control words in shared memory. A
/// crash or a hang is the failure (the process dies or never prints); the
/// properties checked in-process are counted and make the exit status 1.
struct FuzzCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz", abstract: "Fuzz the frame, peer-message and ring decoders (longer runs than CI's).")
    @Option(help: "How long to run (seconds).") var seconds: Double = 10
    @Option(help: "Seed (runs are reproducible per seed and iteration count).") var seed: UInt64 = 1
    @Option(help: "Run at least this many rounds (2,000 frames, 200 ring polls, 1,000 Plasma frames each), however long they take.")
    var minRounds = 0
    @Flag var json = false

    func run() throws {
        var rng = SplitMix(seed: seed)
        var frames = FrameFuzz(), ring = try RingFuzz(), plasma = PlasmaFuzz()
        let start = Date(), deadline = start.addingTimeInterval(seconds)
        var lastReport = start, rounds = 0
        while rounds < minRounds || Date() < deadline {
            rounds += 1
            for _ in 0..<2_000 { frames.one(&rng) }
            for _ in 0..<200 { ring.one(&rng) }
            for _ in 0..<1_000 { plasma.one(&rng) }
            if !json, Date().timeIntervalSince(lastReport) >= 5 {
                lastReport = Date()
                FileHandle.standardError.write(Data("… \(frames.iterations) frames, \(ring.polls) ring polls\n".utf8))
            }
        }
        let elapsed = Date().timeIntervalSince(start)
        let failures = frames.roundTripFailures + ring.badDeliveries + plasma.roundTripFailures
        if json {
            print(#"{"seconds":\#(elapsed),"seed":\#(seed),"rounds":\#(rounds),"frames":\#(frames.iterations),"frames_rejected":\#(frames.rejected),"round_trip_failures":\#(frames.roundTripFailures),"peer_messages":\#(frames.peerMessages),"ring_polls":\#(ring.polls),"ring_corrupt":\#(ring.corrupt),"ring_delivered":\#(ring.delivered),"ring_bad_deliveries":\#(ring.badDeliveries),"ring_producer_errors":\#(ring.producerErrors),"plasma_frames":\#(plasma.iterations),"plasma_rejected":\#(plasma.rejected),"plasma_round_trip_failures":\#(plasma.roundTripFailures),"failures":\#(failures)}"#)
        } else {
            print("\(frames.iterations) frames (\(frames.rejected) rejected, \(frames.roundTripFailures) round-trip failures), \(frames.peerMessages) peer messages, \(ring.polls) ring polls (\(ring.corrupt) corrupt, \(ring.delivered) delivered, \(ring.badDeliveries) bad), \(ring.producerErrors) producer errors, \(plasma.iterations) Plasma frames (\(plasma.rejected) rejected, \(plasma.roundTripFailures) round-trip failures) in \(String(format: "%.1f", elapsed)) s: \(failures == 0 ? "no failures" : "FAILURES")")
        }
        if failures > 0 { throw ExitCode(1) }
    }
}

/// A small deterministic generator (SplitMix64).
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Mutations of valid frames, decoded by every client-frame and peer decoder.
struct FrameFuzz {
    var iterations = 0, rejected = 0, roundTripFailures = 0, peerMessages = 0
    let seeds: [[UInt8]]
    let peerSeeds: [(UInt16, [UInt8])]

    init() {
        let id = ObjectID(bytes: Array(1...20))!
        let l = ObjectLocation(offset: 4096, dataSize: 100, metadataSize: 8, reserved: 128, region: 1)
        let requests: [StoreRequest] = [.create(id, dataSize: 100, metadataSize: 8), .seal(id, digest: 7), .abort(id),
                                        .get([id, id], timeoutMs: -1), .release(id), .contains(id), .delete([id]), .list,
                                        .evict(bytes: 1 << 20), .subscribe, .stats, .refresh([id])]
        var s = requests.map { Wire.encode($0, requestId: 9) }
        s += [Wire.encodeCreateAndSeal([.init(id: id, data: [1, 2, 3], metadata: [4])], requestId: 9), Wire.encodeOpenRings(requestId: 9),
              Wire.encode(ClusterRequest.createOn(id, dataSize: 10, metadataSize: 0, node: 2), requestId: 9),
              Wire.encode(ClusterRequest.barrier(name: 5), requestId: 9), Wire.encodeRegions(requestId: 9),
              Wire.encodeWriteAccess(requestId: 9), Wire.encodeVerify([id], requestId: 9)]
        let info = ObjectInfo(id: id, location: l, state: .sealed, refCount: 1, createdNanos: 5, constructNanos: 6, digest: 7)
        let responses: [StoreResponse] = [.created(l), .objects([l, nil]), .deleted([nil, .notFound(id)]), .list([info]), .contains(true),
                                          .error(.outOfMemory(requested: 1, evictable: 0)), .createdAndSealed([nil])]
        s += responses.map { Wire.encode($0, requestId: 9) }
        s += [Wire.encode(.sealed(id, l)), Wire.encode(Hello(regionSize: 1 << 20, lineSize: 64, clientId: 3)),
              Wire.encode([Wire.RegionInfo(handle: 1, node: 2, size: 4096, lineSize: 64)], requestId: 9),
              Wire.encode(Wire.RingPair(requests: 64, replies: 4096, length: 4032, doorbell: 0), requestId: 9),
              Wire.encodeVerified([nil, .digestMismatch(id)], requestId: 9)]
        seeds = s
        let peers: [PeerMessage] = [.hello(incarnation: 3), .reserve(id, view: 5), .view(6), .publish(id, owner: 1, creator: 2, location: l, digest: 3, view: 7),
                                    .lookup(id, watch: true), .acquireReply(code: 0, location: l, digest: 9),
                                    .allocate(id, dataSize: 5, metadataSize: 1), .barrierRelease(name: 1, round: 2, nodes: 3),
                                    .listChunk([info], last: true), .relay(to: 1, from: 2, kind: 0x10, correlation: 4, body: [1, 2])]
        peerSeeds = peers.map { ($0.kind.rawValue, $0.encodeBody()) }
    }

    static let boundaries: [UInt64] = [0, 1, 0x7F, 0x80, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0xFFFF_FFFF, 1 << 20, 4096, 4097, .max, UInt64(Int64.max)]

    static func mutate(_ input: [UInt8], _ rng: inout SplitMix) -> [UInt8] {
        var b = input
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            switch Int.random(in: 0..<6, using: &rng) {
            case 0 where !b.isEmpty: b[Int.random(in: 0..<b.count, using: &rng)] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
            case 1 where !b.isEmpty: b.removeLast(Int.random(in: 0...b.count, using: &rng))
            case 2: b += (0..<Int.random(in: 1...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 3 where b.count >= 8:
                let at = Int.random(in: 0...(b.count - 8), using: &rng), v = boundaries.randomElement(using: &rng)!
                let width = [1, 2, 4, 8].randomElement(using: &rng)!
                for i in 0..<width { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
            case 4 where !b.isEmpty: b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            default: break
            }
        }
        // Mostly keep the length field consistent, so parsing goes deeper.
        if b.count >= 4, Int.random(in: 0..<10, using: &rng) < 7 {
            let n = UInt32(truncatingIfNeeded: b.count)
            for i in 0..<4 { b[i] = UInt8(truncatingIfNeeded: n >> (8 * i)) }
        }
        return b
    }

    mutating func one(_ rng: inout SplitMix) {
        iterations += 1
        let frame = Self.mutate(seeds.randomElement(using: &rng)!, &rng)
        _ = try? Frame.complete(frame)
        _ = try? Wire.decodeIncoming(frame)
        _ = try? Wire.decodeHello(frame)
        do {
            let (rid, request) = try Wire.decode(frame)
            // Whatever decodes re-encodes to something that decodes the same.
            if case .core(let r) = request, (try? Wire.decode(Wire.encode(r, requestId: rid)))?.request != request { roundTripFailures += 1 }
        } catch { rejected += 1 }
        if iterations % 4 == 0 {
            peerMessages += 1
            let (kind, body) = peerSeeds.randomElement(using: &rng)!
            let k = Int.random(in: 0..<8, using: &rng) == 0 ? UInt16.random(in: 0...0xFF, using: &rng) : kind
            _ = try? PeerMessage.decode(kind: k, body: Self.mutate(body, &rng))
        }
    }
}

/// A ring in anonymous memory whose slots and control words are corrupted
/// at random between posts and polls: the consumer must never deliver a
/// payload other than one posted, the producer must throw or post, and
/// neither may crash or loop.
struct RingFuzz {
    let memory: MappedMemory
    let layout: RingLayout
    var producer: RingProducer<MappedMemory>
    var consumer: RingConsumer<MappedMemory>
    var polls = 0, corrupt = 0, delivered = 0, badDeliveries = 0, producerErrors = 0
    var nextMessage: UInt64 = 0
    var epoch: UInt64 = 1

    init() throws {
        let line = LineSize.default
        layout = try RingLayout(base: 0, lineSize: line.bytes, slotCount: 8, slotSize: 256)
        memory = try Mapping(anonymous: (layout.totalBytes + 4095) / 4096 * 4096).memory(lineSize: line)
        Ring.format(layout, producer: 1, consumer: 2, in: memory)
        producer = try RingProducer(memory: memory, layout: layout)
        consumer = RingConsumer(memory: memory, layout: layout, ackBatch: 2)
    }

    /// The payload of message n: its length and bytes follow from n.
    static func payload(_ n: UInt64, max: Int) -> [UInt8] {
        (0..<Int(n % UInt64(max + 1))).map { UInt8(truncatingIfNeeded: n &+ UInt64($0) &* 31) }
    }

    mutating func one(_ rng: inout SplitMix) {
        switch Int.random(in: 0..<200, using: &rng) {
        case 0..<90:
            let n = nextMessage
            let p = Self.payload(n, max: layout.maxPayload)
            do {
                if case .posted = try p.withUnsafeBytes({ try producer.post(kind: 1, requestId: n, payload: $0) }) { nextMessage += 1 }
            } catch {
                // The consumer line is corrupt: what a store does with such a
                // peer — format the ring anew and attach both ends again.
                producerErrors += 1
                epoch += 1
                Ring.format(layout, producer: 1, consumer: 2, epoch: epoch, in: memory)
                if let p = try? RingProducer(memory: memory, layout: layout) { producer = p }
                consumer = RingConsumer(memory: memory, layout: layout, ackBatch: 2)
            }
        case 90..<94:
            // Corrupt a random byte anywhere in the ring (control lines too).
            let at = Int.random(in: 0..<layout.totalBytes, using: &rng)
            memory.write(at: at, count: 1) { $0[0] = UInt8.random(in: 0...255, using: &rng) }
        case 94:
            // An absurd 8-byte control word.
            let at = [layout.consumedOffset, layout.ackEpochOffset, layout.resetRequestOffset, layout.epochOffset].randomElement(using: &rng)!
            memory.store64(FrameFuzz.boundaries.randomElement(using: &rng)!, at: at, ordering: .releasing)
        default:
            polls += 1
            var got: (UInt64, [UInt8])?
            switch consumer.poll({ got = ($0.requestId, Array($0.payload)) }) {
            case .delivered:
                delivered += 1
                // A delivered message is one that was posted, byte for byte
                // (a corruption that keeps the CRC is a 2^-32 event).
                if let (n, bytes) = got, bytes != Self.payload(n, max: layout.maxPayload) || n >= nextMessage { badDeliveries += 1 }
            case .corrupt: corrupt += 1
            case .empty: break
            }
        }
    }
}
