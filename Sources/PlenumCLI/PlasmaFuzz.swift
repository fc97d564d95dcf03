import PlenumPlasma
import PlenumStore

/// Mutation fuzzing of the Plasma decoder (SPEC §11): headers, request and
/// reply bodies, notifications. Whatever request decodes must re-encode to
/// one that decodes the same.
struct PlasmaFuzz {
    var iterations = 0, rejected = 0, roundTripFailures = 0
    let seeds: [[UInt8]]

    init() {
        let id = ObjectID(bytes: Array(1...20))!
        let requests: [PlasmaRequest] = [
            .connect, .create(id, evictIfFull: true, dataSize: 100, metadataSize: 8, deviceNum: 0),
            .createAndSeal([PlasmaInlineObject(id: id, data: [1, 2, 3], metadata: [4])], batch: false),
            .createAndSeal([PlasmaInlineObject(id: id, data: [1], metadata: []), PlasmaInlineObject(id: id, data: [], metadata: [2])], batch: true),
            .abort(id), .seal(id), .get([id, id], timeoutMs: -1), .release(id), .delete([id]), .contains(id), .list,
            .evict(bytes: 1 << 20), .subscribe, .setOptions(clientName: [65], outputMemoryQuota: 5), .debugString, .refreshLRU([id]),
        ]
        let spec = PlasmaObjectSpec(segmentIndex: 1, dataOffset: 4096, dataSize: 100, metadataOffset: 4196, metadataSize: 8)
        let info = PlasmaObjectInfo(id: id, dataSize: 5, metadataSize: 1, refCount: 2, createTime: 3, constructDuration: -1, digest: [1, 2], isDeletion: true)
        let replies: [PlasmaReply] = [
            .connect(memoryCapacity: 1 << 30), .create(id, spec, .ok, storeFD: 1, mmapSize: 1 << 20),
            .get([id, id], [spec, .missing], storeFDs: [1], mmapSizes: [1 << 20]), .delete([id], [.objectInUse]),
            .list([info, info]), .seal(id, .ok), .contains(id, true), .evict(bytes: 9), .debugString([66]),
        ]
        seeds = requests.map(PlasmaCodec.encode) + replies.map(PlasmaCodec.encode) + [PlasmaCodec.notification([info])]
    }

    mutating func one(_ rng: inout SplitMix) {
        iterations += 1
        var frame = FrameFuzz.mutate(seeds.randomElement(using: &rng)!, &rng)
        // Mostly keep the header's length word consistent, so parsing goes deeper.
        if frame.count >= PlasmaCodec.headerBytes, Int.random(in: 0..<10, using: &rng) < 7 {
            let n = UInt64(frame.count - PlasmaCodec.headerBytes)
            for i in 0..<8 { frame[16 + i] = UInt8(truncatingIfNeeded: n >> (8 * i)) }
        }
        _ = try? PlasmaCodec.decodeNotification(Array(frame.dropFirst(8)))
        guard let header = try? PlasmaCodec.header(frame, from: 0), frame.count - PlasmaCodec.headerBytes >= header.length else {
            rejected += 1
            return
        }
        let body = Array(frame[PlasmaCodec.headerBytes..<(PlasmaCodec.headerBytes + header.length)])
        _ = try? PlasmaCodec.decodeReply(type: header.type, body: body)
        do {
            let request = try PlasmaCodec.decodeRequest(type: header.type, body: body)
            let again = PlasmaCodec.encode(request)
            let back = try? PlasmaCodec.decodeRequest(type: header.type, body: Array(again[PlasmaCodec.headerBytes...]))
            if back != request { roundTripFailures += 1 }
        } catch { rejected += 1 }
    }
}
