import CPlenumShim
import CURing
import Glibc
import PlenumCluster
import PlenumMemory
import PlenumRegion
import PlenumStore
import PlenumWire

/// The cluster side of the loop (SPEC §10.3): heartbeats on a timer, peer
/// rings polled with the client rings, the doorbell socket, and what the
/// store tells its clients about peer regions and the cluster.
extension StoreDaemon {
    var heartbeatNanos: UInt64 { UInt64(options.cluster?.config.heartbeatMillis ?? 50) * 1_000_000 }

    /// The doorbell: a datagram socket peers on this host write one byte to.
    func openBell() throws {
        guard let me = options.cluster.flatMap({ $0.config.node($0.node) }) else { return }
        unlink(me.bell)
        bellFD = socket(AF_UNIX, 2 /* SOCK_DGRAM */ | 0o2000000 /* SOCK_CLOEXEC */, 0)
        guard bellFD >= 0 else { throw DaemonError.system(.last("socket", subject: me.bell)) }
        let ok = try UnixSocket.withAddress(me.bell) { bind(bellFD, $0, $1) }
        guard ok == 0 else { throw DaemonError.system(.last("bind", subject: me.bell, hint: "is another store using this socket path?")) }
        armBell()
    }

    func armBell() {
        guard bellFD >= 0 else { return }
        let s = sqe()
        io_uring_prep_recv(s, bellFD, bellBuffer, 64, 0)
        io_uring_sqe_set_data64(s, Self.data(.bell))
    }

    /// Publishes this node's heartbeat, reads the peers', feeds membership
    /// changes to the core; re-armed every `heartbeat_ms`.
    func heartbeat() {
        guard let peers else { return }
        let now = monotonicNanos()
        nextHeartbeat = now &+ heartbeatNanos
        let s = core.store.load
        let load = Heartbeat(beat: 0, incarnation: 0, capacity: s.capacity, used: s.used, objects: s.objects,
                             largestFree: s.largestFree, flags: core.store.subscribers.isEmpty ? 0 : Heartbeat.flagSubscribers)
        var events: [ClusterEvent] = []
        peers.tick(now: now, load: load, into: &events)
        for e in events { apply(e, now: now) }
        apply(.local(.tick), now: now)
        if !heartbeatArmed {
            heartbeatArmed = true
            armTimeout(heartbeatSpec, heartbeatNanos, .heartbeat)
        }
    }

    /// One pass over the peer rings; replies the core makes go out at once.
    func pollPeers() -> Int {
        guard let peers else { return 0 }
        var events = spareEvents.takeForReuse()   // no allocation per message
        var n = peers.poll(into: &events)
        if !events.isEmpty {
            let now = monotonicNanos()
            for e in events { apply(e, now: now) }
            n += peers.flushAll()
        }
        spareEvents = events
        return n
    }

    /// The regions this store maps for its clients, descriptors attached
    /// (SPEC §10.7): every live peer's, by the handle locations name.
    func sendRegions(to c: Connection, requestId: UInt64) {
        var table: [Wire.RegionInfo] = []
        var fds: [Int32] = []
        if let peers {
            for (node, handle) in peers.handles.sorted(by: { $0.value < $1.value }) {
                guard let r = peers.peerRegions[node], fds.count < Int(PLENUM_MAX_FDS) else {
                    table.append(Wire.RegionInfo(handle: handle, node: node, size: 0, lineSize: region.lineSize.bytes))
                    continue
                }
                let fd = open(r.path, (c.writable ? O_RDWR : O_RDONLY) | O_CLOEXEC)
                guard fd >= 0 else { continue }
                table.append(Wire.RegionInfo(handle: handle, node: node, size: r.size, lineSize: r.lineSize.bytes))
                fds.append(fd)
            }
        }
        sendSocket(c, Wire.encode(table, requestId: requestId), descriptors: fds)
    }

    /// `plenum status` (SPEC §10.9): this node's view as JSON.
    func statusJSON() -> String {
        let s = core.store.stats
        let j = JSON()
        j.object {
            j.field("node", Int(core.me))
            j.field("incarnation", Int(truncatingIfNeeded: incarnation))
            j.field("socket", options.socketPath)
            j.field("pid", Int(getpid()))
            j.field("region", regionPath)
            j.field("memory") {
                j.object {
                    j.field("capacity", s.capacity); j.field("used", s.used); j.field("free", s.capacity - s.used)
                    j.field("objects", s.objects); j.field("fragmentation", s.allocator.fragmentation)
                }
            }
            j.field("clients", connections.count)
            j.field("directory_entries", core.directoryEntries)
            j.field("directory_index") {
                j.object {
                    j.field("capacity", index?.layout.capacity ?? 0); j.field("indexed", index?.indexed ?? 0)
                    j.field("overflowed", index?.overflowedCount ?? 0); j.field("bucket_writes", index?.writes ?? 0)
                    j.field("peeks", core.counters.indexPeeks); j.field("peeks_asked", core.counters.indexMisses)
                }
            }
            j.field("view", String(core.view, radix: 16))
            j.field("parked", core.parkedCount)
            j.field("taken_over", core.takenOver)
            j.field("awaiting_takeover", core.awaitingTakeoverCount)
            j.field("awaiting_peers", core.unresolved.count)
            j.field("pending_peer_requests", core.pendingRequests)
            j.field("barrier_waiters", core.barrierWaiterCount)
            j.field("wait") {
                j.object {
                    j.field("mode", wait.mode.rawValue)
                    if let cpu = options.cluster.flatMap({ $0.config.node($0.node) })?.cpu { j.field("cpu", cpu) }
                    j.field("bells", wait.bells)
                    j.field("sleeps", sleeps)
                    j.field("idle_polls", idlePolls)
                    j.field("bells_rung", peers?.bellsRung ?? 0)
                }
            }
            let c = core.counters
            j.field("messages") {
                j.object {
                    j.field("in", c.messagesIn); j.field("out", c.messagesOut); j.field("unexpected_replies", c.unexpectedReplies)
                    j.field("refused", c.refusedMessages); j.field("digest_mismatches", c.digestMismatches)
                    j.field("timeouts", c.peerTimeouts); j.field("deaths", c.deaths); j.field("joins", c.joins)
                }
            }
            let held = core.referencesHeld
            let lent = core.referencesLent
            let now = monotonicNanos()
            j.field("peers") {
                j.array {
                    for l in (peers?.links.values.sorted { $0.peer < $1.peer }) ?? [] {
                        j.element {
                            j.object {
                                j.field("node", Int(l.peer))
                                j.field("socket", peers?.config.node(l.peer)?.socket ?? "")
                                j.field("state", Self.describe(l.state, attached: l.attached))
                                j.field("alive", core.peers[l.peer] != nil)
                                j.field("heartbeat_age_ms", l.lastBeatAt == 0 ? -1 : Int((now &- l.lastBeatAt) / 1_000_000))
                                if let load = core.loads[l.peer] {
                                    j.field("memory") {
                                        j.object { j.field("capacity", load.capacity); j.field("used", load.used); j.field("free", load.free); j.field("objects", load.objects)
                                                   j.field("subscribers", load.subscribers) }
                                    }
                                }
                                j.field("references_held", held[l.peer] ?? 0)
                                j.field("references_lent", lent[l.peer] ?? 0)
                                if !l.lastError.isEmpty { j.field("last_error", l.lastError) }
                                for (name, p, q) in [("ring_out", core.me, l.peer), ("ring_in", l.peer, core.me)] {
                                    j.field(name) {
                                        j.object {
                                            let site = peers?.plan.site(from: p, to: q)
                                            j.field("pair", "\(p)->\(q)")
                                            j.field("lives_in_node", Int(site?.host ?? 0))
                                            if name == "ring_out" {
                                                j.field("posted", Int(truncatingIfNeeded: l.producer?.posted ?? 0)); j.field("sent", l.sent)
                                                j.field("queued", l.pending); j.field("full_events", l.fullEvents); j.field("overflow_dropped", l.overflow)
                                                j.field("epoch", Int(truncatingIfNeeded: l.producer?.epoch ?? 0))
                                            } else {
                                                j.field("consumed", Int(truncatingIfNeeded: l.consumer?.consumed ?? 0)); j.field("received", l.received)
                                                j.field("corrupt_slots", l.corrupt); j.field("dropped", l.dropped)
                                                j.field("epoch", Int(truncatingIfNeeded: l.consumer?.epoch ?? 0))
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    for r in (peers?.relayed.values.sorted { $0.peer < $1.peer }) ?? [] {
                        j.element {
                            j.object {
                                j.field("node", Int(r.peer))
                                j.field("socket", peers?.config.node(r.peer)?.socket ?? "")
                                j.field("state", Self.describe(r.state, attached: true))
                                j.field("alive", core.peers[r.peer] != nil)
                                j.field("relayed_via", Int(r.via))
                                j.field("heartbeat_age_ms", r.lastHelloAt == 0 ? -1 : Int((now &- r.lastHelloAt) / 1_000_000))
                                j.field("references_held", held[r.peer] ?? 0)
                                j.field("references_lent", lent[r.peer] ?? 0)
                                j.field("relayed_sent", r.sent); j.field("relayed_received", r.received); j.field("dropped", r.dropped)
                            }
                        }
                    }
                }
            }
            j.field("forwarded_for_others", peers?.forwarded ?? 0)
            j.field("link_blocks_repaired", peers?.blocksRepaired ?? 0)
            j.field("transport") {
                j.object {
                    j.field("name", peers?.config.transport.rawValue ?? "rings")
                    if let peers, let carrier = peers.carrier {
                        for (k, v) in carrier.counters.sorted(by: { $0.key < $1.key }) { j.field(k, v) }
                        j.field("refused", peers.carrierRefused)
                        j.field("inbox_dropped", peers.inbox?.dropped ?? 0)
                    }
                }
            }
        }
        return j.text
    }
}

extension StoreDaemon {
    /// A link's state as `plenum status` names it.
    static func describe(_ state: PeerLinks.State, attached: Bool) -> String {
        switch state {
        case .waiting: return attached ? "waiting for hello" : "detached"
        case .up: return "alive"
        case .fenced: return "dead"
        }
    }
}

/// A minimal JSON writer for status documents (keys in insertion order).
final class JSON {
    var text = ""
    var first = [true]

    func comma() {
        if first[first.count - 1] { first[first.count - 1] = false } else { text += "," }
    }
    func object(_ body: () -> Void) { text += "{"; first.append(true); body(); first.removeLast(); text += "}" }
    func array(_ body: () -> Void) { text += "["; first.append(true); body(); first.removeLast(); text += "]" }
    func element(_ body: () -> Void) { comma(); body() }
    func key(_ k: String) { comma(); text += quote(k) + ":" }
    func field(_ k: String, _ body: () -> Void) { key(k); body() }
    func field(_ k: String, _ v: Int) { key(k); text += "\(v)" }
    func field(_ k: String, _ v: Double) { key(k); text += v.isFinite ? "\(v)" : "0" }
    func field(_ k: String, _ v: Bool) { key(k); text += v ? "true" : "false" }
    func field(_ k: String, _ v: String) { key(k); text += quote(v) }

    func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default:
                if u.value < 0x20 { out += "\\u00" + String(u.value, radix: 16).leftPad(2) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}

private extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}

extension StoreDaemon {
    /// Peer messages sent (notifications aside) and directory indexes read
    /// so far: a request that changed it between its arrival and its reply
    /// was remote.
    var peerWork: Int { core.counters.peerWork &+ core.counters.indexPeeks &+ core.counters.indexMisses }

    /// SPEC §10.9 "Metrics": the store's state now, then its per-request series.
    func metricsText() -> String {
        let held = core.referencesHeld, lent = core.referencesLent
        var peerRows: [MetricsSnapshot.Peer] = []
        for l in (peers?.links.values.sorted { $0.peer < $1.peer }) ?? [] {
            peerRows.append(.init(peer: l.peer, alive: core.peers[l.peer] != nil, sent: l.sent, received: l.received, fullEvents: l.fullEvents,
                                  corrupt: l.corrupt, held: held[l.peer] ?? 0, lent: lent[l.peer] ?? 0))
        }
        for r in (peers?.relayed.values.sorted { $0.peer < $1.peer }) ?? [] {
            peerRows.append(.init(peer: r.peer, alive: core.peers[r.peer] != nil, sent: r.sent, received: r.received, fullEvents: 0,
                                  corrupt: 0, held: held[r.peer] ?? 0, lent: lent[r.peer] ?? 0))
        }
        return metrics.render(MetricsSnapshot(store: core.store.stats, clients: connections.count,
                                              directoryEntries: core.directoryEntries, digestsPending: lateDigests.count,
                                              cluster: core.counters, peers: peerRows))
    }
}

extension StoreDaemon {
    /// `--metrics-file`: the text to PATH.tmp, renamed over PATH (a reader
    /// never sees half a file), every second.
    func writeMetricsFile() {
        guard let path = options.metricsFile else { return }
        let tmp = path + ".tmp"
        let bytes = Array(metricsText().utf8)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        var ok = fd >= 0
        if ok {
            ok = bytes.withUnsafeBytes { b in
                var done = 0
                while done < b.count {
                    let n = write(fd, b.baseAddress! + done, b.count - done)
                    if n <= 0 { return false }
                    done += n
                }
                return true
            }
            close(fd)
        }
        if ok { ok = rename(tmp, path) == 0 }
        if !ok {
            let e = errno
            warnings.warning(logger, key: "metrics-file", "metrics file \(path) could not be written (errno \(e)); retrying every second", now: monotonicNanos())
        }
        armTimeout(metricsSpec, 1_000_000_000, .metricsFile)
    }
}
