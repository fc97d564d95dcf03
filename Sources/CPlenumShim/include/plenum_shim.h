// plenum_shim.h — the few things Swift cannot reach on Linux.
//
// Cache-line write-back/invalidate instructions, the fences that order them,
// cpuid, the spin-wait hint, CPU pinning (CPU_SET is a macro) and hardware
// CRC32C. Everything is prefixed `plenum_`. Architectures: x86_64, aarch64,
// ppc64le; anything else fails to compile (see shim.c).
//
// See SPEC.md §3 (coherence primitives) for what each one guarantees.
#ifndef PLENUM_SHIM_H
#define PLENUM_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Which instruction `plenum_flush_range` or `plenum_invalidate_range` uses
/// on this CPU.
typedef enum {
    PLENUM_FLUSH_CLFLUSHOPT = 1, ///< x86_64 CLFLUSHOPT (ordered by SFENCE)
    PLENUM_FLUSH_CLFLUSH = 2,    ///< x86_64 CLFLUSH (fallback, serialising)
    PLENUM_FLUSH_DC_CIVAC = 3,   ///< aarch64 DC CIVAC (clean+invalidate to PoC)
    PLENUM_FLUSH_DCBF = 4,       ///< ppc64le DCBF (flush data cache block)
    PLENUM_FLUSH_CLWB = 5,       ///< x86_64 CLWB (write back, may keep the line clean; ordered by SFENCE)
} plenum_flush_kind;

/// Detects the CPU's features once; later calls are cheap. Thread-safe.
void plenum_cpu_init(void);

/// The hardware data-cache line size in bytes (cpuid / CTR_EL0 / 128).
uint32_t plenum_hw_line_size(void);

/// The instruction `plenum_flush_range` will use: CLWB where the CPU has it.
plenum_flush_kind plenum_flush_kind_in_use(void);

/// The instruction `plenum_invalidate_range` will use (never CLWB).
plenum_flush_kind plenum_invalidate_kind_in_use(void);

/// Writes back (if dirty) every hardware line overlapping
/// [start, start+length); the line may stay in this CPU's cache, clean
/// (CLWB), or be dropped (every other instruction). Not ordered with later
/// loads or stores until a fence (`plenum_fence_store` / `plenum_fence_full`).
void plenum_flush_range(const void *start, size_t length);

/// Writes back (if dirty) and drops from this CPU's cache every hardware
/// line overlapping [start, start+length), so the next load misses. Same
/// ordering as `plenum_flush_range`.
void plenum_invalidate_range(const void *start, size_t length);

/// Orders earlier stores and flushes before later stores and flushes.
/// x86_64: SFENCE; aarch64: DSB ISH; ppc64le: HWSYNC.
void plenum_fence_store(void);

/// Orders earlier loads, stores and flushes before later loads and stores.
/// x86_64: MFENCE; aarch64: DSB ISH; ppc64le: HWSYNC.
void plenum_fence_full(void);

/// Spin-wait hint. x86_64: PAUSE; aarch64: YIELD; ppc64le: OR 27,27,27.
void plenum_cpu_relax(void);

/// CRC32C (Castagnoli), hardware instruction when the CPU has one.
uint32_t plenum_crc32c(uint32_t crc, const void *data, size_t length);

/// CRC32C (seed 0) of data[0, gap_at) ++ data[gap_at + gap_length, length):
/// a ring slot's checksum, which skips its own field, in one call.
/// Requires gap_at + gap_length <= length.
uint32_t plenum_crc32c_gap(const void *data, size_t length, size_t gap_at, size_t gap_length);

/// Pins the calling thread to one CPU. Returns 0 or an errno value.
int plenum_pin_to_cpu(int cpu);

/// FUTEX_WAIT (shared, not private: the word is in a file two processes
/// map) on the 32-bit word at `word` while it holds `expected`, at most
/// `timeout_ns`. Returns 0 when woken, else an errno value (ETIMEDOUT;
/// EAGAIN: the word no longer held `expected`; EINTR).
int plenum_futex_wait(const void *word, uint32_t expected, int64_t timeout_ns);

/// FUTEX_WAKE (shared) of up to `count` waiters on the word at `word`.
/// Returns how many were woken, or -errno.
int plenum_futex_wake(const void *word, int count);

/// prctl(PR_SET_TIMERSLACK, ns) for the calling thread: how late its
/// timers may fire (default 50 µs). Returns 0 or an errno value.
int plenum_set_timer_slack(unsigned long ns);

// ---- File-descriptor passing (CMSG macros do not import into Swift) -------

/// Sends `len` bytes and one file descriptor (SCM_RIGHTS) on a Unix socket.
/// Returns bytes sent or -1 with errno set.
long plenum_send_with_fd(int socket, const void *data, size_t len, int fd);
/// Receives up to `cap` bytes and at most one passed descriptor (-1 if none)
/// into `*fd`. Returns bytes received, 0 at end of stream, -1 with errno.
long plenum_recv_with_fd(int socket, void *data, size_t cap, int *fd);

/// An anonymous memory file (memfd, close-on-exec) of `size` bytes, sealed
/// against shrinking and growing (a peer holding it cannot make the other
/// side's mapping fault with SIGBUS), or -1 with errno.
int plenum_memfd(const char *name, size_t size);
/// The uid of the process at the other end of a Unix socket (SO_PEERCRED;
/// struct ucred needs _GNU_SOURCE). 0 or -1 with errno.
int plenum_peer_uid(int socket, unsigned int *uid);

/// posix_spawn_file_actions_addclosefrom_np(actions, lowfd): the spawned
/// process closes every descriptor ≥ lowfd (glibc ≥ 2.34; a GNU extension
/// Swift's Glibc module does not import). `actions` is a
/// posix_spawn_file_actions_t *. 0 or an error number.
int plenum_spawn_close_from(void *actions, int lowfd);

/// Up to this many descriptors travel with one message.
#define PLENUM_MAX_FDS 64

/// A heap-allocated `struct msghdr` (with its iovec, a copy of `data` and an
/// SCM_RIGHTS control block carrying `fds[0..<n]`), for io_uring's sendmsg.
/// Free with `plenum_fdmsg_free` after the send completed. NULL if n is out
/// of 0...PLENUM_MAX_FDS or memory is short.
void *plenum_fdmsg_create(const void *data, size_t len, const int *fds, int n);
void plenum_fdmsg_free(void *msg);
/// Bytes of the message (`plenum_fdmsg_create`'s len).
size_t plenum_fdmsg_length(const void *msg);

/// recvmsg that collects up to `maxfds` SCM_RIGHTS descriptors into `fds`
/// and their count into `*nfds` (descriptors beyond `maxfds` are closed).
/// Returns bytes received, 0 at end of stream, -1 with errno.
long plenum_recv_with_fds(int socket, void *data, size_t cap, int flags, int *fds, int maxfds, int *nfds);

// ---- Coroutines (simulator only) ------------------------------------------
//
// The coherency-fault simulator runs each simulated node's *production* code
// on its own stack and switches between them at single memory operations,
// all on one OS thread, so a seeded schedule is exactly reproducible.
// ucontext (makecontext/swapcontext) on every architecture.

typedef struct plenum_coro plenum_coro;

/// A context for the calling (scheduler) stack; switch away from it to start.
plenum_coro *plenum_coro_main(void);
/// A coroutine that will run `entry(arg)` on a fresh `stack_bytes` stack
/// (guard page below it). When `entry` returns (its frames unwound, so the
/// objects they held are released) the coroutine resumes the context set
/// with `plenum_coro_exit_to`, for good; none set: abort.
plenum_coro *plenum_coro_create(size_t stack_bytes, void (*entry)(void *), void *arg);
/// Where `coro` goes when its entry returns (set before it returns).
void plenum_coro_exit_to(plenum_coro *coro, plenum_coro *next);
/// Saves the current context into `from` and resumes `to`.
void plenum_coro_switch(plenum_coro *from, plenum_coro *to);
/// Frees a coroutine that is not running (never the current one).
void plenum_coro_destroy(plenum_coro *coro);

#ifdef __cplusplus
}
#endif
#endif
