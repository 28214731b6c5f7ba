/*
 * worker_bench.c -- what liblbworker costs a C analyzer per packet, and that it allocates
 * nothing per batch. Run by bench/worker.sh (release build).
 *
 *     worker_bench NAME:K RUN_DIR SETTLE_MS BATCH
 *
 * Attaches, waits SETTLE_MS for lb to publish its whole (ring-sized) capture, then drains the
 * ring with lb_worker_next_batch + lb_worker_release, touching the first byte and the metadata
 * of every packet, and reporting once per batch. The time from the first batch to end of stream
 * and the number of malloc/calloc/realloc calls made meanwhile (this file interposes them) are
 * printed as one JSON line.
 */
#include <lb_worker.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static atomic_ulong allocations;
void *malloc(size_t n) { atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed); return __libc_realloc(p, n); }

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: %s NAME:K RUN_DIR SETTLE_MS BATCH\n", argv[0]); return 2; }
    int batch = atoi(argv[4]);
    if (batch < 1 || batch > 4096) batch = 256;
    static struct lb_worker_packet pkts[4096];
    char err[LB_WORKER_ERRBUF_SIZE];
    struct lb_worker_options o;
    memset(&o, 0, sizeof o);
    o.run_dir = argv[2];
    o.wait_ms = 60000;
    lb_worker_t *w = lb_worker_open_opts(argv[1], &o, err);
    if (!w) { fprintf(stderr, "worker_bench: %s\n", err); return 1; }
    usleep((useconds_t)atoi(argv[3]) * 1000u);

    uint64_t packets = 0, bytes = 0, sum = 0, batches = 0;
    int n = lb_worker_next_batch(w, pkts, batch, 1000);   /* the first batch starts the clock */
    unsigned long allocs0 = atomic_load(&allocations);
    double t0 = now();
    while (n >= 0) {
        for (int i = 0; i < n; i++) {
            sum += pkts[i].data[0] ^ pkts[i].flow_hash ^ pkts[i].flags;
            bytes += pkts[i].caplen;
        }
        packets += (uint64_t)n;
        batches += n > 0;
        lb_worker_report(w, packets, 0, 0);
        n = lb_worker_next_batch(w, pkts, batch, 1000);
    }
    double t1 = now();
    unsigned long allocs = atomic_load(&allocations) - allocs0;
    if (n != LB_WORKER_EOS) { fprintf(stderr, "worker_bench: ended with %d, not end of stream\n", n); return 1; }
    lb_worker_close(w);
    double s = t1 - t0;
    printf("{\"packets\":%llu,\"bytes\":%llu,\"batch\":%d,\"batches\":%llu,\"seconds\":%.6f,\"mpps\":%.3f,"
           "\"ns_per_packet\":%.2f,\"allocations_while_draining\":%lu,\"checksum\":%llu}\n",
           (unsigned long long)packets, (unsigned long long)bytes, batch, (unsigned long long)batches, s,
           (double)packets / s / 1e6, s * 1e9 / (double)packets, allocs, (unsigned long long)sum);
    return 0;
}
