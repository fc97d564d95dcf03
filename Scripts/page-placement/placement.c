// Read bandwidth of /dev/shm pages by how and when they were allocated (a
// benchmark, not a test; see Scripts/bench-page-placement). Two files of
// TOTAL MiB each; in every round SIZE MiB of each is written (memset) and
// then read with the same strided loop as the store benchmarks (8 bytes per
// 64-byte line). A pair names how each file got its pages and in which
// order: "lazy" = by the first round's writes, "populate" = all TOTAL MiB by
// MADV_POPULATE_WRITE when the file is created (as `plenum store` does).
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
static double readRate(const char *p, size_t size) {
    uint64_t s = 0;
    double t = now();
    for (size_t i = 0; i + 8 <= size; i += 64) { uint64_t v; memcpy(&v, p + i, 8); s += v; }
    t = now() - t;
    if (s == 1) printf(" ");
    return size / t / 1e9;
}
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
static char *file(size_t total, int populate) {
    char path[64];
    static int k;
    snprintf(path, sizeof path, "/dev/shm/plenum-placement-%d-%d", getpid(), k++);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || ftruncate(fd, total) != 0) { perror(path); exit(1); }
    unlink(path);
    char *p = mmap(0, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(1); }
    close(fd);
    if (populate && madvise(p, total, 23 /* MADV_POPULATE_WRITE */) != 0) { perror("madvise"); exit(1); }
    return p;
}
int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: placement SIZE_MIB TOTAL_MIB ROUNDS FIRST,SECOND (lazy|populate)\n"); return 2; }
    size_t size = (size_t)atol(argv[1]) << 20, total = (size_t)atol(argv[2]) << 20;
    int rounds = atoi(argv[3]);
    if (rounds < 1 || rounds > 99 || size == 0 || total < size) { fprintf(stderr, "bad sizes or rounds\n"); return 2; }
    const char *pairs[] = {"lazy,lazy", "lazy,populate", "populate,lazy", "populate,populate"};
    int pair = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(argv[4], pairs[i]) == 0) pair = i;
    if (pair < 0) { fprintf(stderr, "pair must be lazy|populate,lazy|populate, not %s\n", argv[4]); return 2; }
    int popFirst = pair >= 2, popSecond = pair % 2 == 1;
    // The first file gets its pages before the second is created.
    char *a = file(total, popFirst);
    if (!popFirst) memset(a, 0x5A, size);
    char *b = file(total, popSecond);
    double ra[99], rb[99];
    for (int r = 0; r < rounds; r++) {
        memset(a, 0x5A, size); ra[r] = readRate(a, size);
        memset(b, 0x5A, size); rb[r] = readRate(b, size);
    }
    qsort(ra, rounds, sizeof(double), cmp);
    qsort(rb, rounds, sizeof(double), cmp);
    printf("{\"pair\":\"%s\",\"first_gbps\":%.3f,\"second_gbps\":%.3f,\"second_over_first\":%.4f}\n", argv[4], ra[rounds / 2], rb[rounds / 2],
           rb[rounds / 2] / ra[rounds / 2]);
    return 0;
}
