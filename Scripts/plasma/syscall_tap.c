// syscall_tap.c — an LD_PRELOAD library for Scripts/plasma-client-breakdown
// (a diagnostic, not a test): times the socket calls of a Plasma client
// with one connection to its store.
//
// Every write(2) and read(2) on a socket is timed (CLOCK_MONOTONIC around
// the call). Plasma's client writes a request as 4 writes (version, type,
// length, body); the type is the second. The reads that follow a run of
// writes take one reply — one read or several: Plasma's server writes a
// reply in 4 writes, Plenum's in one — and their summed time is that
// reply's time, filed under the type of the last request written before
// it (a get+release writes the release, then the get: the reply is the
// get's). The time between one call's return and the next call
// ("between") is the client's own work.
//
// With PLENUM_TAP_SPIN=1 every socket read polls recv(MSG_DONTWAIT)
// instead of blocking: the client never sleeps, so a reply's time is the
// server's answer alone, without the client's own wake-ups.
//
// At exit it writes to the file named by PLENUM_TAP_OUT (nothing without it):
// {"write":{"n":N,"ns":AVG},"between":{"n":N,"ns":AVG},
//  "replies":{"TYPE":{"n":N,"ns":AVG,"reads":AVG},…}}.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TAP_TYPES 64
static double tap_write_total, tap_between, tap_last_end, tap_reply_ns;
static long tap_writes, tap_gaps, tap_reply_reads, tap_writes_in_run;
static int tap_in_reply, tap_spin;
static int64_t tap_last_type = -1;
static double tap_type_ns[TAP_TYPES];
static long tap_type_n[TAP_TYPES], tap_type_reads[TAP_TYPES];
static ssize_t (*tap_real_write)(int, const void*, size_t);
static ssize_t (*tap_real_read)(int, void*, size_t);
// 1: known to be a socket (fds up to 1023). Only sockets are remembered: a
// number the program used for a file before may be reused for its socket.
// (A socket number reused for a file is caught below: ENOTSOCK.)
static unsigned char tap_socket_fd[1024];

static double tap_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int tap_is_socket(int fd) {
    if (fd < 0 || fd >= 1024) return 0;
    if (!tap_socket_fd[fd]) {
        struct stat st;
        tap_socket_fd[fd] = fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
    }
    return tap_socket_fd[fd];
}

static void tap_gap(double start, double end) {
    if (tap_last_end > 0) { tap_between += start - tap_last_end; tap_gaps++; }
    tap_last_end = end;
}

// Files the reply read so far under the last request's type.
static void tap_close_reply(void) {
    if (!tap_in_reply) return;
    tap_in_reply = 0;
    if (tap_last_type < 0 || tap_last_type >= TAP_TYPES) return;
    tap_type_ns[tap_last_type] += tap_reply_ns;
    tap_type_reads[tap_last_type] += tap_reply_reads;
    tap_type_n[tap_last_type]++;
}

__attribute__((constructor)) static void tap_init(void) {
    const char* s = getenv("PLENUM_TAP_SPIN");
    tap_spin = s != NULL && s[0] == '1';
}

ssize_t write(int fd, const void* p, size_t n) {
    if (!tap_real_write) tap_real_write = (ssize_t (*)(int, const void*, size_t))dlsym(RTLD_NEXT, "write");
    if (!tap_is_socket(fd)) return tap_real_write(fd, p, n);
    if (tap_in_reply) { tap_close_reply(); tap_writes_in_run = 0; }
    if (tap_writes_in_run % 4 == 1 && n == 8) memcpy(&tap_last_type, p, 8);
    tap_writes_in_run++;
    double a = tap_now();
    ssize_t r = tap_real_write(fd, p, n);
    double b = tap_now();
    tap_write_total += b - a;
    tap_writes++;
    tap_gap(a, b);
    return r;
}

ssize_t read(int fd, void* p, size_t n) {
    if (!tap_real_read) tap_real_read = (ssize_t (*)(int, void*, size_t))dlsym(RTLD_NEXT, "read");
    if (!tap_is_socket(fd)) return tap_real_read(fd, p, n);
    if (!tap_in_reply) { tap_in_reply = 1; tap_reply_ns = 0; tap_reply_reads = 0; }
    double a = tap_now();
    ssize_t r;
    if (tap_spin) {
        do { r = recv(fd, p, n, MSG_DONTWAIT); } while (r < 0 && (errno == EAGAIN || errno == EINTR));
        if (r < 0 && errno == ENOTSOCK) { tap_socket_fd[fd] = 0; r = tap_real_read(fd, p, n); }
    } else {
        r = tap_real_read(fd, p, n);
    }
    double b = tap_now();
    tap_reply_ns += b - a;
    tap_reply_reads++;
    tap_writes_in_run = 0;
    tap_gap(a, b);
    return r;
}

__attribute__((destructor)) static void tap_report(void) {
    const char* path = getenv("PLENUM_TAP_OUT");
    if (path == NULL) return;
    tap_close_reply();
    FILE* f = fopen(path, "w");
    if (f == NULL) return;
    fprintf(f, "{\"write\":{\"n\":%ld,\"ns\":%.1f},", tap_writes, tap_writes ? tap_write_total / tap_writes : 0.0);
    fprintf(f, "\"between\":{\"n\":%ld,\"ns\":%.1f},\"replies\":{", tap_gaps, tap_gaps ? tap_between / tap_gaps : 0.0);
    int first = 1;
    for (int t = 0; t < TAP_TYPES; t++) {
        if (tap_type_n[t] == 0) continue;
        fprintf(f, "%s\"%d\":{\"n\":%ld,\"ns\":%.1f,\"reads\":%.2f}", first ? "" : ",", t, tap_type_n[t],
                tap_type_ns[t] / tap_type_n[t], (double)tap_type_reads[t] / tap_type_n[t]);
        first = 0;
    }
    fprintf(f, "}}\n");
    fclose(f);
}
