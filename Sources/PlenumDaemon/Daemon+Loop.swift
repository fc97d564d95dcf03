#if canImport(Glibc)
import Glibc
#endif
import CPlenumShim
import CURing
import PlenumCluster
import PlenumMemory

/// The daemon's loop (SPEC §10.1 "Waiting", §9.6): poll the rings, then
/// spin, yield or sleep in io_uring as the wait policy says, and carry out
/// every completion.
extension StoreDaemon {
    /// Serves until a terminating signal; then removes the socket and region.
    public func run() throws {
        defer { shutdown() }
        try listen()
        var mask = Self.blockTerminatingSignals()
        sigdelset(&mask, SIGPIPE)
        signalFD = signalfd(-1, &mask, Int32(SFD_CLOEXEC))
        guard signalFD >= 0 else { throw DaemonError.system(.last("signalfd")) }
        // Completions are run when the loop enters the kernel anyway (it does
        // at every look, poll step or sleep): a client's request then costs
        // it no inter-processor interrupt while the loop polls. Kernels
        // before 5.19 refuse the flags: plain set-up.
        var rc = io_uring_queue_init(256, &ring, UInt32(IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG))
        if rc == -EINVAL { rc = io_uring_queue_init(256, &ring, 0) }
        guard rc == 0 else { throw DaemonError.system(SystemCallError("io_uring_queue_init", errno: -rc, hint: "the kernel must allow io_uring (/proc/sys/kernel/io_uring_disabled = 0)")) }
        defer { io_uring_queue_exit(&ring) }
        armAccept()
        if plasmaListenFD >= 0 { armPlasmaAccept() }
        armSignal()
        writeMetricsFile()
        if let peers, let me = options.cluster.flatMap({ $0.config.node($0.node) }) {
            try openBell()
            try peers.startCarrier(bell: me.bell)
            heartbeat()
        }
        logger.info("serving", metadata: ["socket": "\(options.socketPath)", "region": "\(regionPath)", "capacity": "\(core.store.config.capacity)",
                                          "node": "\(core.me)"])
        try pinIfAsked()
        while running {
            let polling = !endpoints.isEmpty || peers?.anyAttached == true
            if polling {
                // Messages handled keep the loop awake; replies waiting for
                // room do not (a client that stops reading must not make
                // this store spin): they are retried by a timer below.
                if pollAll() > 0 { lastRingActivity = monotonicNanos() }
                if peers != nil, monotonicNanos() >= nextHeartbeat { heartbeat() }
                let step = wait.step(idleFor: monotonicNanos() &- lastRingActivity, expecting: core.pendingRequests > 0,
                                     peers: peers?.anyAttached == true)
                switch step {
                case .spin, .yield:
                    io_uring_submit(&ring)
                    drainCompletions()
                    armTimer()
                    if step == .spin { CPU.relax() } else { sched_yield() }
                    continue
                case .sleep(let pollAfter):
                    // Going to sleep: publish it, then look once more (a client
                    // or peer that posted before seeing the flag is served now).
                    setAllSleeping(true)
                    if pollAll() > 0 { setAllSleeping(false); lastRingActivity = monotonicNanos(); continue }
                    if endpoints.values.contains(where: { !$0.pending.isEmpty }) || peers?.anyPending == true { armRetry() }
                    if let pollAfter { armIdlePoll(pollAfter) }
                    sleeps += 1
                }
            }
            digestWhileIdle()
            if !polling, socketClientsExpected() { continue }
            io_uring_submit_and_wait(&ring, 1)
            if polling { setAllSleeping(false) }
            drainCompletions()
            armTimer()
        }
    }

    /// A node with `cpu` runs its loop on that CPU (SPEC §10.1 "Waiting";
    /// a dedicated node must name one). With bells off, timers fire when
    /// asked, not up to 50 µs later (the default timer slack): the idle
    /// poll is that short.
    func pinIfAsked() throws {
        if !wait.bells { _ = plenum_set_timer_slack(1000) }
        guard let (config, node) = options.cluster, let cpu = config.node(node)?.cpu else { return }
        do { try CPU.pin(to: cpu) } catch {
            throw DaemonError.badOption("cannot pin node \(node) to cpu \(cpu): \(error) (is it one of this host's CPUs?)")
        }
        logger.info("the loop runs pinned to cpu \(cpu)\(wait.mode == .dedicated ? " and never sleeps" : "")")
    }

    /// A socket client's next request (Plasma's, or a client without rings)
    /// comes within tens of µs of its last. For `idleWindow` after one the
    /// loop polls its completion queue, yielding the CPU between looks as
    /// it does for rings (PAUSE only within `busySpin`, or when dedicated),
    /// instead of blocking: a blocked store answers only once the kernel
    /// has scheduled it back (SPEC §10.1 "Waiting"). False once the window
    /// has passed: block.
    func socketClientsExpected() -> Bool {
        let idle = monotonicNanos() &- lastSocketRequest
        guard idle < wait.idleWindow else { return false }
        io_uring_submit(&ring)
        if plenum_uring_work_pending(&ring) == 0 {
            if wait.mode == .dedicated || idle < wait.busySpin { CPU.relax() } else { sched_yield() }
        }
        drainCompletions()
        armTimer()
        return true
    }

    /// Client rings and peer rings, one pass.
    func pollAll() -> Int {
        var n = endpoints.isEmpty ? 0 : pollRings()
        if peers != nil { n += pollPeers() }
        return n
    }

    func setAllSleeping(_ sleeping: Bool) {
        if !endpoints.isEmpty { setSleeping(sleeping) }
        peers?.setSleeping(sleeping)
    }

    func drainCompletions() {
        var cqe: UnsafeMutablePointer<io_uring_cqe>?
        while io_uring_peek_cqe(&ring, &cqe) == 0, let c = cqe {
            let data = c.pointee.user_data, res = c.pointee.res
            io_uring_cqe_seen(&ring, c)
            complete(tag: Tag(rawValue: data >> 56), client: data & 0x00FF_FFFF_FFFF_FFFF, result: res)
        }
    }
}
