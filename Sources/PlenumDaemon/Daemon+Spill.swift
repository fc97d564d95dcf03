import PlenumMemory
import PlenumStore
import PlenumWire

/// Plasma's `-e hashtable://` external store (SPEC §11.6): an evicted
/// object's bytes are copied into this process before its memory is reused,
/// and a Plasma get of such an id creates and seals it again first.
///
/// ```
///   core evicts id ─▶ .evicted(id, location) ─▶ copy data + metadata ─▶ spilled[id]   (oldest dropped past spillLimit)
///   Plasma get [ids] ─▶ id not in the store, in spilled ─▶ create + write + seal ─▶ the get proceeds
/// ```
extension StoreDaemon {
    func spill(_ id: ObjectID, _ l: ObjectLocation) {
        guard let limit = options.spillLimit, l.dataSize + l.metadataSize <= limit, l.end <= region.size else { return }
        let memory = region.memory()
        // Written back by its writer at seal; read as this node sees it now.
        let bytes = memory.read(at: l.offset, count: l.dataSize + l.metadataSize) { Array($0) }
        spillDrop(id)
        spillSerial += 1
        spilled[id] = (Array(bytes[0..<l.dataSize]), Array(bytes[l.dataSize...]), spillSerial)
        spillOrder.append((spillSerial, id))
        spilledBytes += bytes.count
        // Oldest first; entries dropped meanwhile are skipped (their serial
        // no longer matches), so each costs O(1) amortised.
        while spilledBytes > limit, spillHead < spillOrder.count {
            let (serial, old) = spillOrder[spillHead]
            spillHead += 1
            if spilled[old]?.serial == serial { spillDrop(old) }
        }
        if spillHead > 1024, spillHead * 2 > spillOrder.count {
            spillOrder.removeFirst(spillHead)
            spillHead = 0
        }
    }

    func spillDrop(_ id: ObjectID) {
        guard let o = spilled.removeValue(forKey: id) else { return }
        spilledBytes -= o.data.count + o.metadata.count
    }

    /// Brings spilled objects back (each may evict, and so spill, others).
    func restoreSpilled(_ ids: [ObjectID], for client: UInt64) {
        guard !spilled.isEmpty else { return }
        for id in ids where core.store.location(id) == nil {
            guard let o = spilled[id] else { continue }
            if let e = createAndSeal(Wire.InlineObject(id: id, data: o.data, metadata: o.metadata), client: client) {
                logger.info("a spilled object could not come back", metadata: ["id": "\(id)", "why": "\(e)"])
                continue
            }
            spillDrop(id)
        }
    }
}
