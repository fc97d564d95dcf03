import PlenumCluster

/// The view this store publishes for its clients (SPEC §10.4 "Client
/// peeks"): rewritten whenever the core's peers change, before anything
/// that change caused is carried out — so no reply a client receives was
/// computed under a view newer than the one the record shows.
extension StoreDaemon {
    /// Writes the record if the core's peers changed since the last write
    /// (a change of anything but life, handle or reach writes nothing).
    func publishView() {
        guard var v = clusterView, v.written != core.peersChanges || v.seq == 0 else { return }
        var members: [NodeID: ClusterViewLayout.Member] = [core.me: .init(incarnation: incarnation, handle: 0, mapped: true)]
        for (n, info) in core.peers {
            members[n] = .init(incarnation: info.incarnation, handle: info.region, mapped: info.regionSize != nil)
        }
        v.written = core.peersChanges
        if members != v.members || v.seq == 0 {
            v.layout.write(me: core.me, members: members, seq: &v.seq, in: region.memory())
            v.members = members
        }
        clusterView = v
    }
}
