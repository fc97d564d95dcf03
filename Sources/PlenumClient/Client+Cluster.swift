import CPlenumShim
import Glibc
import PlenumMemory
import PlenumStore
import PlenumWire

/// The cluster side of the client (SPEC §10.6, §10.7): peer regions mapped
/// from the descriptors the store passes, creates placed on a node, the
/// barrier and the store's view of the cluster.
extension PlenumClient {
    /// The memory a location's bytes are in, after checking they lie inside
    /// it. Unknown handles (a peer's region, mapped anew) fetch the table.
    public func memory(for l: ObjectLocation) throws(ClientError) -> MappedMemory {
        let m: MappedMemory
        if l.region == 0 {
            m = memory
        } else {
            if peerRegions[l.region] == nil { try refreshRegions() }
            guard let p = peerRegions[l.region] else { throw .badLocation(l) }
            m = p.memory
        }
        guard l.offset >= 0, l.end <= m.size else { throw .badLocation(l) }
        return m
    }

    /// Maps every region the store passes (descriptors with the reply).
    public func refreshRegions() throws(ClientError) {
        let table = try socketCall(Wire.encodeRegions) { incoming, rid -> [Wire.RegionInfo]? in
            if case .regions(rid, let t) = incoming { return t } else { return nil }
        }
        let mapped = table.filter { $0.size > 0 && $0.handle != 0 }
        guard receivedFDs.count >= mapped.count else { throw .unexpected("region table without its descriptors") }
        let fds = Array(receivedFDs.prefix(mapped.count))
        receivedFDs.removeFirst(mapped.count)
        defer { for f in fds { close(f) } }
        var fresh: [Int: (info: Wire.RegionInfo, mapping: Mapping, memory: MappedMemory)] = [:]
        for (info, f) in zip(mapped, fds) {
            if let old = peerRegions[info.handle] { fresh[info.handle] = old; continue }
            guard let line = try? LineSize(info.lineSize) else { throw .unexpected("line size \(info.lineSize)") }
            do {
                let mapping = try Mapping(fd: f, size: info.size, subject: "region of node \(info.node)", writable: access == .readWrite)
                fresh[info.handle] = (info, mapping, mapping.memory(lineSize: line))
            } catch { throw .connect(error) }
        }
        peerRegions = fresh
    }

    /// The regions this client maps: handle, node and size.
    public var regions: [Wire.RegionInfo] {
        [Wire.RegionInfo(handle: 0, node: UInt32.max, size: memory.size, lineSize: memory.lineSize)] + peerRegions.values.map(\.info).sorted { $0.handle < $1.handle }
    }

    /// Creates in a named node's memory (`node` nil: anywhere, local first;
    /// SPEC §10.6). Write it through the link with `write`, then `seal`.
    public func create(_ id: ObjectID, dataSize: Int, metadataSize: Int = 0, onNode node: UInt32?) throws(ClientError) -> ObjectLocation {
        guard access == .readWrite else { throw .readOnly }
        let r = try exchange { Wire.encode(ClusterRequest.createOn(id, dataSize: dataSize, metadataSize: metadataSize, node: node), requestId: $0) }
        guard case .created(let l) = r else { throw .unexpected("create") }
        _ = try memory(for: l)
        return l
    }

    /// Waits until every live node of the cluster reached barrier `name`;
    /// returns how many nodes passed it.
    public func barrier(_ name: UInt64) throws(ClientError) -> Int {
        guard case .barrierPassed(let n) = try exchange({ Wire.encode(ClusterRequest.barrier(name: name), requestId: $0) }) else { throw .unexpected("barrier") }
        return n
    }

    /// The store's view of its cluster (SPEC §10.9), as JSON.
    /// Starts (on) or stops recording the store's hop events (SPEC §9.2
    /// 0x17); returns what it recorded since the last start, and how many
    /// events it could not keep.
    public func hopTrace(on: Bool) throws(ClientError) -> (events: [HopEvent], dropped: Int) {
        try socketCall({ Wire.encodeHopTrace(on: on, requestId: $0) }) { incoming, rid -> ([HopEvent], Int)? in
            if case .hopTrace(rid, let events, let dropped) = incoming { return (events, dropped) } else { return nil }
        }
    }

    /// What the store counts, in Prometheus's text format (SPEC §10.9 "Metrics").
    public func metrics() throws(ClientError) -> String {
        try socketCall(Wire.encodeMetrics) { incoming, rid -> String? in
            if case .metrics(rid, let text) = incoming { return text } else { return nil }
        }
    }

    public func clusterStatus() throws(ClientError) -> String {
        try socketCall(Wire.encodeClusterStatus) { incoming, rid -> String? in
            if case .clusterStatus(rid, let json) = incoming { return json } else { return nil }
        }
    }
}
