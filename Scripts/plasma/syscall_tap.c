// syscall_tap.c — an LD_PRELOAD library for Scripts/plasma-client-breakdown
// (a diagnostic, not a test): times the socket calls a Plasma client makes.
//
// Every write(2) and read(2) on a socket is timed (CLOCK_MONOTONIC around
// the call). A read that follows a write is the client waiting for a reply
// ("wait"); the reads after it take the rest of that reply ("read"). The
// time between one call's return and the next call ("between") is the
// client's own work. With PLENUM_TAP_SPIN=1 a wait polls recv(MSG_DONTWAIT)
// instead of blocking: the client never sleeps, so its wait is the server's
// answer time alone, without the client's own wake-up.
//
// At exit it writes {"write":{"n":N,"ns":AVG},"wait":…,"read":…,"between":…}
// to the file named by PLENUM_TAP_OUT (nothing without it).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { TAP_WRITE, TAP_WAIT, TAP_READ, TAP_KINDS };
static const char* const tap_names[TAP_KINDS] = {"write", "wait", "read"};
static double tap_total[TAP_KINDS], tap_between;
static long tap_count[TAP_KINDS], tap_gaps;
static double tap_last_end;
static int tap_after_write, tap_spin;
static ssize_t (*tap_real_write)(int, const void*, size_t);
static ssize_t (*tap_real_read)(int, void*, size_t);
// 1: known to be a socket (fds up to 1023). Only sockets are remembered: a
// number the program used for a file before may be reused for its socket.
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

static void tap_record(int kind, double start, double end) {
    tap_total[kind] += end - start;
    tap_count[kind]++;
    if (tap_last_end > 0) { tap_between += start - tap_last_end; tap_gaps++; }
    tap_last_end = end;
}

__attribute__((constructor)) static void tap_init(void) {
    const char* s = getenv("PLENUM_TAP_SPIN");
    tap_spin = s != NULL && s[0] == '1';
}

ssize_t write(int fd, const void* p, size_t n) {
    if (!tap_real_write) tap_real_write = (ssize_t (*)(int, const void*, size_t))dlsym(RTLD_NEXT, "write");
    if (!tap_is_socket(fd)) return tap_real_write(fd, p, n);
    double a = tap_now();
    ssize_t r = tap_real_write(fd, p, n);
    tap_record(TAP_WRITE, a, tap_now());
    tap_after_write = 1;
    return r;
}

ssize_t read(int fd, void* p, size_t n) {
    if (!tap_real_read) tap_real_read = (ssize_t (*)(int, void*, size_t))dlsym(RTLD_NEXT, "read");
    if (!tap_is_socket(fd)) return tap_real_read(fd, p, n);
    int waiting = tap_after_write;
    tap_after_write = 0;
    double a = tap_now();
    ssize_t r;
    if (waiting && tap_spin) {
        do { r = recv(fd, p, n, MSG_DONTWAIT); } while (r < 0 && (errno == EAGAIN || errno == EINTR));
    } else {
        r = tap_real_read(fd, p, n);
    }
    tap_record(waiting ? TAP_WAIT : TAP_READ, a, tap_now());
    return r;
}

__attribute__((destructor)) static void tap_report(void) {
    const char* path = getenv("PLENUM_TAP_OUT");
    if (path == NULL) return;
    FILE* f = fopen(path, "w");
    if (f == NULL) return;
    fprintf(f, "{");
    for (int k = 0; k < TAP_KINDS; k++)
        fprintf(f, "\"%s\":{\"n\":%ld,\"ns\":%.1f},", tap_names[k], tap_count[k], tap_count[k] ? tap_total[k] / tap_count[k] : 0.0);
    fprintf(f, "\"between\":{\"n\":%ld,\"ns\":%.1f}}\n", tap_gaps, tap_gaps ? tap_between / tap_gaps : 0.0);
    fclose(f);
}
