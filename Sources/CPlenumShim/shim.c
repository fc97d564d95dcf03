// shim.c — see include/plenum_shim.h. One `#if` branch per architecture.
#define _GNU_SOURCE
#include "plenum_shim.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__x86_64__) && !defined(__aarch64__) && !defined(__powerpc64__)
#error "Plenum supports x86_64, aarch64 and ppc64le"
#endif

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#endif

static atomic_int cpu_ready;
static uint32_t hw_line = 64;
static plenum_flush_kind flush_kind;       // write back (SPEC §3.2)
static plenum_flush_kind invalidate_kind;  // write back and drop (SPEC §3.3)
static int hw_crc;

void plenum_cpu_init(void) {
    if (atomic_load_explicit(&cpu_ready, memory_order_acquire)) return;
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        uint32_t words = (b >> 8) & 0xff; // CLFLUSH line size in 8-byte words
        if (words) hw_line = words * 8;
        hw_crc = (c >> 20) & 1; // SSE4.2
    }
    invalidate_kind = PLENUM_FLUSH_CLFLUSH;
    uint32_t leaf7 = 0;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) leaf7 = b;
    if ((leaf7 >> 23) & 1) invalidate_kind = PLENUM_FLUSH_CLFLUSHOPT;
    flush_kind = ((leaf7 >> 24) & 1) ? PLENUM_FLUSH_CLWB : invalidate_kind;
    // PLENUM_FLUSH=clflushopt (or clflush) flushes with the invalidating
    // instruction instead of CLWB: to measure what CLWB buys (SPEC §3.2).
    const char *forced = getenv("PLENUM_FLUSH");
    if (forced && (strcmp(forced, "clflushopt") == 0 || strcmp(forced, "clflush") == 0)) flush_kind = invalidate_kind;
#elif defined(__aarch64__)
    uint64_t ctr;
    __asm__ volatile("mrs %0, ctr_el0" : "=r"(ctr));
    hw_line = 4u << ((ctr >> 16) & 0xf); // DminLine, log2 of words
    flush_kind = invalidate_kind = PLENUM_FLUSH_DC_CIVAC;
    hw_crc = (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
#else
    hw_line = 128; // POWER8/9/10
    flush_kind = invalidate_kind = PLENUM_FLUSH_DCBF;
    hw_crc = 0;
#endif
    atomic_store_explicit(&cpu_ready, 1, memory_order_release);
}

uint32_t plenum_hw_line_size(void) { plenum_cpu_init(); return hw_line; }
plenum_flush_kind plenum_flush_kind_in_use(void) { plenum_cpu_init(); return flush_kind; }
plenum_flush_kind plenum_invalidate_kind_in_use(void) { plenum_cpu_init(); return invalidate_kind; }

#if defined(__x86_64__)
__attribute__((target("clwb")))
static void flush_clwb(const char *p, const char *end, uint32_t step) {
    for (; p < end; p += step) __builtin_ia32_clwb((void *)p);
}
__attribute__((target("clflushopt")))
static void flush_opt(const char *p, const char *end, uint32_t step) {
    for (; p < end; p += step) __builtin_ia32_clflushopt((void *)p);
}
static void flush_legacy(const char *p, const char *end, uint32_t step) {
    for (; p < end; p += step) __builtin_ia32_clflush((void *)p);
}
#endif

// One instruction per hardware line overlapping [start, start+length).
static void line_range(plenum_flush_kind kind, const void *start, size_t length) {
    if (length == 0) return;
    uintptr_t mask = ~(uintptr_t)(hw_line - 1);
    const char *p = (const char *)((uintptr_t)start & mask);
    const char *end = (const char *)start + length;
#if defined(__x86_64__)
    if (kind == PLENUM_FLUSH_CLWB) flush_clwb(p, end, hw_line);
    else if (kind == PLENUM_FLUSH_CLFLUSHOPT) flush_opt(p, end, hw_line);
    else flush_legacy(p, end, hw_line);
#elif defined(__aarch64__)
    (void)kind;
    for (; p < end; p += hw_line) __asm__ volatile("dc civac, %0" ::"r"(p) : "memory");
#else
    (void)kind;
    for (; p < end; p += hw_line) __asm__ volatile("dcbf 0, %0" ::"r"(p) : "memory");
#endif
}

void plenum_flush_range(const void *start, size_t length) {
    plenum_cpu_init();
    line_range(flush_kind, start, length);
}

void plenum_invalidate_range(const void *start, size_t length) {
    plenum_cpu_init();
    line_range(invalidate_kind, start, length);
}

void plenum_fence_store(void) {
#if defined(__x86_64__)
    __asm__ volatile("sfence" ::: "memory");
#elif defined(__aarch64__)
    __asm__ volatile("dsb ish" ::: "memory");
#else
    __asm__ volatile("sync" ::: "memory"); // hwsync
#endif
}

void plenum_fence_full(void) {
#if defined(__x86_64__)
    __asm__ volatile("mfence" ::: "memory");
#elif defined(__aarch64__)
    __asm__ volatile("dsb ish" ::: "memory");
#else
    __asm__ volatile("sync" ::: "memory");
#endif
}

void plenum_cpu_relax(void) {
#if defined(__x86_64__)
    __asm__ volatile("pause" ::: "memory");
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#else
    __asm__ volatile("or 27,27,27" ::: "memory");
#endif
}

// ---- CRC32C -------------------------------------------------------------

static uint32_t crc_table[8][256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

// Built once (pthread_once: no thread reads a half-built table).
static void crc_table_build(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

static uint32_t crc_soft(uint32_t crc, const unsigned char *p, size_t n) {
    pthread_once(&crc_table_once, crc_table_build);
    while (n >= 8) {
        uint64_t v;
        __builtin_memcpy(&v, p, 8);
        v ^= crc; // little-endian hosts only (all three targets run LE here)
        crc = crc_table[7][v & 0xff] ^ crc_table[6][(v >> 8) & 0xff] ^
              crc_table[5][(v >> 16) & 0xff] ^ crc_table[4][(v >> 24) & 0xff] ^
              crc_table[3][(v >> 32) & 0xff] ^ crc_table[2][(v >> 40) & 0xff] ^
              crc_table[1][(v >> 48) & 0xff] ^ crc_table[0][v >> 56];
        p += 8; n -= 8;
    }
    while (n--) crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return crc;
}

#if defined(__x86_64__) || defined(__aarch64__)
#if defined(__x86_64__)
#define CRC_TARGET __attribute__((target("sse4.2")))
#define CRC_STEP64(c, v) __builtin_ia32_crc32di((c), (v))
#define CRC_STEP8(c, b) __builtin_ia32_crc32qi((c), (b))
#define CRC_STEP32(c, v) __builtin_ia32_crc32si((c), (v))
#else
#define CRC_TARGET __attribute__((target("+crc")))
#define CRC_STEP64(c, v) ((uint64_t)__builtin_arm_crc32cd((uint32_t)(c), (v)))
#define CRC_STEP8(c, b) __builtin_arm_crc32cb((c), (b))
#define CRC_STEP32(c, v) __builtin_arm_crc32cw((c), (v))
#endif

// Long inputs run three independent CRC streams over three consecutive
// blocks (the instruction's latency is about three times its issue rate),
// then join them: the register after A‖B is zeros_|B|(crc(A)) ⊕ crc₀(B),
// where crc₀ starts from 0 and zeros_n feeds n zero bytes through the
// register — a linear map, applied here with four byte-indexed tables.
//
//   p: [ block A | block B | block C ] [ … ]  rest: one stream
//        c0        c1 (0)    c2 (0)
//   c0 ← zeros(c0) ⊕ c1;  c0 ← zeros(c0) ⊕ c2
#define CRC_LONG 8192
#define CRC_SHORT 256
static uint32_t crc_zeros_long[4][256], crc_zeros_short[4][256];
static pthread_once_t crc_zeros_once = PTHREAD_ONCE_INIT;

// A 32×32 matrix over GF(2) as the images of the 32 unit vectors.
static uint32_t gf2_apply(const uint32_t m[32], uint32_t v) {
    uint32_t sum = 0;
    for (int i = 0; v != 0; i++, v >>= 1)
        if (v & 1) sum ^= m[i];
    return sum;
}

// Tables of the map that feeds 2^log2bits zero bits through the reflected
// CRC-32C register, one table per byte of the register.
static void crc_zeros_tables(uint32_t t[4][256], int log2bits) {
    uint32_t m[32], sq[32];
    m[0] = 0x82F63B78u; // one zero bit: r → r >> 1 ⊕ (r & 1 ? poly : 0)
    for (int i = 1; i < 32; i++) m[i] = 1u << (i - 1);
    for (int k = 0; k < log2bits; k++) {
        for (int i = 0; i < 32; i++) sq[i] = gf2_apply(m, m[i]);
        for (int i = 0; i < 32; i++) m[i] = sq[i];
    }
    for (uint32_t b = 0; b < 256; b++)
        for (int k = 0; k < 4; k++) t[k][b] = gf2_apply(m, b << (8 * k));
}

static void crc_zeros_build(void) {
    crc_zeros_tables(crc_zeros_long, 16);  // 8192 bytes = 2^16 bits
    crc_zeros_tables(crc_zeros_short, 11); // 256 bytes = 2^11 bits
}

static inline uint32_t crc_zeros(uint32_t t[4][256], uint32_t c) {
    return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
}

CRC_TARGET static inline uint64_t crc_three(uint64_t c0, const unsigned char *p, size_t block, uint32_t zeros[4][256]) {
    uint64_t c1 = 0, c2 = 0;
    for (size_t i = 0; i < block; i += 8) {
        uint64_t v0, v1, v2;
        __builtin_memcpy(&v0, p + i, 8);
        __builtin_memcpy(&v1, p + block + i, 8);
        __builtin_memcpy(&v2, p + 2 * block + i, 8);
        c0 = CRC_STEP64(c0, v0);
        c1 = CRC_STEP64(c1, v1);
        c2 = CRC_STEP64(c2, v2);
    }
    uint32_t c = crc_zeros(zeros, (uint32_t)c0) ^ (uint32_t)c1;
    return crc_zeros(zeros, c) ^ (uint32_t)c2;
}

CRC_TARGET static uint32_t crc_hw(uint32_t crc, const unsigned char *p, size_t n) {
    uint64_t c = crc;
    if (n >= 3 * CRC_SHORT) {
        pthread_once(&crc_zeros_once, crc_zeros_build);
        for (; n >= 3 * CRC_LONG; p += 3 * CRC_LONG, n -= 3 * CRC_LONG) c = crc_three(c, p, CRC_LONG, crc_zeros_long);
        for (; n >= 3 * CRC_SHORT; p += 3 * CRC_SHORT, n -= 3 * CRC_SHORT) c = crc_three(c, p, CRC_SHORT, crc_zeros_short);
    }
    for (; n >= 8; p += 8, n -= 8) { uint64_t v; __builtin_memcpy(&v, p, 8); c = CRC_STEP64(c, v); }
    uint32_t c32 = (uint32_t)c;
    if (n >= 4) { uint32_t v; __builtin_memcpy(&v, p, 4); c32 = CRC_STEP32(c32, v); p += 4; n -= 4; }
    while (n--) c32 = CRC_STEP8(c32, *p++);
    return c32;
}
#endif

uint32_t plenum_crc32c(uint32_t crc, const void *data, size_t length) {
    plenum_cpu_init();
    const unsigned char *p = (const unsigned char *)data;
    crc = ~crc;
#if defined(__x86_64__) || defined(__aarch64__)
    if (hw_crc) return ~crc_hw(crc, p, length);
#endif
    return ~crc_soft(crc, p, length);
}

uint32_t plenum_crc32c_gap(const void *data, size_t length, size_t gap_at, size_t gap_length) {
    plenum_cpu_init();
    const unsigned char *p = (const unsigned char *)data;
    size_t after = gap_at + gap_length;
    uint32_t crc = ~0u;
#if defined(__x86_64__) || defined(__aarch64__)
    if (hw_crc) return ~crc_hw(crc_hw(crc, p, gap_at), p + after, length - after);
#endif
    return ~crc_soft(crc_soft(crc, p, gap_at), p + after, length - after);
}

int plenum_futex_wait(const void *word, uint32_t expected, int64_t timeout_ns) {
    struct timespec t = { .tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000 };
    long r = syscall(SYS_futex, word, FUTEX_WAIT, expected, &t, NULL, 0);
    return r == 0 ? 0 : errno;
}

int plenum_futex_wake(const void *word, int count) {
    long r = syscall(SYS_futex, word, FUTEX_WAKE, count, NULL, NULL, 0);
    return r >= 0 ? (int)r : -errno;
}

int plenum_set_timer_slack(unsigned long ns) {
    return prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0) == 0 ? 0 : errno;
}

int plenum_pin_to_cpu(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : errno;
}
