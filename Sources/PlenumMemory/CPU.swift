import CPlenumShim

/// What this CPU uses for the coherence primitives (SPEC §3.2).
public enum CPU {
    /// The hardware data-cache line size (cpuid, CTR_EL0, or 128 on POWER).
    public static var hardwareLineSize: Int { Int(plenum_hw_line_size()) }

    /// Human-readable names of the flush (write-back, SPEC §3.2) and
    /// invalidate (§3.3) instructions in use, e.g. "clwb+sfence,
    /// invalidate clflushopt"; one name when they are the same.
    public static var flushInstruction: String {
        let flush = name(plenum_flush_kind_in_use()), invalidate = name(plenum_invalidate_kind_in_use())
        return flush == invalidate ? flush : "\(flush), invalidate \(invalidate)"
    }

    static func name(_ kind: plenum_flush_kind) -> String {
        switch kind {
        case PLENUM_FLUSH_CLWB: return "clwb+sfence"
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
