// shim.c — see include/plenum_shim.h. One `#if` branch per architecture.
#define _GNU_SOURCE
#include "plenum_shim.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>

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
static plenum_flush_kind flush_kind;
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
    flush_kind = PLENUM_FLUSH_CLFLUSH;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d) && ((b >> 23) & 1))
        flush_kind = PLENUM_FLUSH_CLFLUSHOPT;
#elif defined(__aarch64__)
    uint64_t ctr;
    __asm__ volatile("mrs %0, ctr_el0" : "=r"(ctr));
    hw_line = 4u << ((ctr >> 16) & 0xf); // DminLine, log2 of words
    flush_kind = PLENUM_FLUSH_DC_CIVAC;
    hw_crc = (getauxval(AT_HWCAP) & HWCAP_CRC32) != 0;
#else
    hw_line = 128; // POWER8/9/10
    flush_kind = PLENUM_FLUSH_DCBF;
    hw_crc = 0;
#endif
    atomic_store_explicit(&cpu_ready, 1, memory_order_release);
}

uint32_t plenum_hw_line_size(void) { plenum_cpu_init(); return hw_line; }
plenum_flush_kind plenum_flush_kind_in_use(void) { plenum_cpu_init(); return flush_kind; }

#if defined(__x86_64__)
__attribute__((target("clflushopt")))
static void flush_opt(const char *p, const char *end, uint32_t step) {
    for (; p < end; p += step) __builtin_ia32_clflushopt((void *)p);
}
static void flush_legacy(const char *p, const char *end, uint32_t step) {
    for (; p < end; p += step) __builtin_ia32_clflush((void *)p);
}
#endif

void plenum_flush_range(const void *start, size_t length) {
    if (length == 0) return;
    plenum_cpu_init();
    uintptr_t mask = ~(uintptr_t)(hw_line - 1);
    const char *p = (const char *)((uintptr_t)start & mask);
    const char *end = (const char *)start + length;
#if defined(__x86_64__)
    if (flush_kind == PLENUM_FLUSH_CLFLUSHOPT) flush_opt(p, end, hw_line);
    else flush_legacy(p, end, hw_line);
#elif defined(__aarch64__)
    for (; p < end; p += hw_line) __asm__ volatile("dc civac, %0" ::"r"(p) : "memory");
#else
    for (; p < end; p += hw_line) __asm__ volatile("dcbf 0, %0" ::"r"(p) : "memory");
#endif
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
static atomic_int crc_table_ready;

static void crc_table_init(void) {
    if (atomic_load_explicit(&crc_table_ready, memory_order_acquire)) return;
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
    atomic_store_explicit(&crc_table_ready, 1, memory_order_release);
}

static uint32_t crc_soft(uint32_t crc, const unsigned char *p, size_t n) {
    crc_table_init();
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

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t crc, const unsigned char *p, size_t n) {
    uint64_t c = crc;
    while (n >= 8) { uint64_t v; __builtin_memcpy(&v, p, 8); c = __builtin_ia32_crc32di(c, v); p += 8; n -= 8; }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return c32;
}
#elif defined(__aarch64__)
__attribute__((target("+crc")))
static uint32_t crc_hw(uint32_t crc, const unsigned char *p, size_t n) {
    while (n >= 8) { uint64_t v; __builtin_memcpy(&v, p, 8); crc = __builtin_arm_crc32cd(crc, v); p += 8; n -= 8; }
    while (n--) crc = __builtin_arm_crc32cb(crc, *p++);
    return crc;
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

int plenum_pin_to_cpu(int cpu) {
    if (cpu < 0 || cpu >= CPU_SETSIZE) return EINVAL;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : errno;
}
