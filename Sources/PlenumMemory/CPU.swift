import CPlenumShim

/// What this CPU uses for the coherence primitives (SPEC §3.2).
public enum CPU {
    /// The hardware data-cache line size (cpuid, CTR_EL0, or 128 on POWER).
    public static var hardwareLineSize: Int { Int(plenum_hw_line_size()) }

    /// Human-readable name of the flush instruction in use.
    public static var flushInstruction: String {
        switch plenum_flush_kind_in_use() {
        case PLENUM_FLUSH_CLFLUSHOPT: return "clflushopt+sfence"
        case PLENUM_FLUSH_CLFLUSH: return "clflush"
        case PLENUM_FLUSH_DC_CIVAC: return "dc civac+dsb ish"
        case PLENUM_FLUSH_DCBF: return "dcbf+hwsync"
        default: return "unknown"
        }
    }

    /// Spin-wait hint (PAUSE / YIELD / OR 27,27,27).
    @inlinable public static func relax() { plenum_cpu_relax() }

    /// Pins the calling thread to `cpu`.
    public static func pin(to cpu: Int) throws(SystemCallError) {
        let rc = plenum_pin_to_cpu(Int32(cpu))
        if rc != 0 {
            throw SystemCallError("sched_setaffinity", errno: rc, subject: "cpu \(cpu)",
                                  hint: "choose a CPU listed by `nproc --all` / lscpu")
        }
    }
}
