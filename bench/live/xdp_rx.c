/*
 * xdp_rx.c -- the limit for the live benchmark: a minimal AF_XDP receive loop.
 *
 * One AF_XDP socket on one queue of an interface, libxdp's default XDP program (it redirects
 * every packet of that queue to the socket), copy mode (veth has no zero-copy), need_wakeup.
 * The loop takes a batch from the RX ring, reads the first byte of each frame (a consumer
 * that never looks at the data would not be a consumer), gives the frames straight back to the
 * fill ring, and sleeps in poll(2) when the RX ring is empty, so its CPU time is a cost
 * figure, not a busy-poll figure. On SIGTERM or SIGINT it prints one JSON line on stdout:
 *   {"packets":N,"bytes":N,"rx_dropped":N,"rx_invalid":N,"rx_ring_full":N,"fill_ring_empty":N}
 * (the last four from XDP_STATISTICS: packets the kernel dropped before the RX ring).
 *
 * Build: cc -O2 -o xdp_rx xdp_rx.c -lxdp -lbpf      (bench/live/run.sh does it)
 * Usage: xdp_rx -i IFACE [-q QUEUE] [-S] [-N] [-c CPU] [-w USEC]
 *   -S  generic (skb) XDP instead of native; -N  native (driver) XDP, no fallback
 *   -c  pin to CPU
 *   -w  after poll(2) wakes up, sleep USEC microseconds before reading, so that a batch
 *       gathers (one wake-up per USEC at most while traffic flows, like TPACKET_V3's block
 *       timeout); the RX ring must hold USEC worth of packets (2048 descriptors here)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

#ifndef SOL_XDP
#define SOL_XDP 283
#endif

#define FRAME_SIZE 4096u          /* holds a 1600-MTU frame after the 256-byte headroom */
#define NUM_FRAMES 4096u
#define RING_SIZE 2048u
#define BATCH 64u

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void die(const char *what, int err) {
    fprintf(stderr, "xdp_rx: %s: %s\n", what, strerror(err < 0 ? -err : err));
    exit(1);
}

int main(int argc, char **argv) {
    const char *ifname = NULL;
    int queue = 0, cpu = -1;
    long coalesce_us = 0;
    __u32 xdp_flags = 0;
    int opt;
    while ((opt = getopt(argc, argv, "i:q:SNc:w:")) != -1) {
        switch (opt) {
        case 'i': ifname = optarg; break;
        case 'q': queue = atoi(optarg); break;
        case 'S': xdp_flags = XDP_FLAGS_SKB_MODE; break;
        case 'N': xdp_flags = XDP_FLAGS_DRV_MODE; break;
        case 'c': cpu = atoi(optarg); break;
        case 'w': coalesce_us = atol(optarg); break;
        default:
            fprintf(stderr, "usage: xdp_rx -i IFACE [-q QUEUE] [-S|-N] [-c CPU] [-w USEC]\n");
            return 2;
        }
    }
    if (!ifname) {
        fprintf(stderr, "usage: xdp_rx -i IFACE [-q QUEUE] [-S|-N] [-c CPU] [-w USEC]\n");
        return 2;
    }
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity", errno);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    size_t size = (size_t)FRAME_SIZE * NUM_FRAMES;
    void *area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (area == MAP_FAILED) die("mmap", errno);

    struct xsk_ring_prod fill;
    struct xsk_ring_cons comp, rx;
    struct xsk_umem *umem;
    struct xsk_umem_config ucfg = {
        .fill_size = NUM_FRAMES, .comp_size = 64, .frame_size = FRAME_SIZE,
        .frame_headroom = 0, .flags = 0,
    };
    int err = xsk_umem__create(&umem, area, size, &fill, &comp, &ucfg);
    if (err) die("xsk_umem__create", err);

    struct xsk_socket *xsk;
    struct xsk_socket_config scfg = {
        .rx_size = RING_SIZE, .tx_size = 0, .libxdp_flags = 0,
        .xdp_flags = xdp_flags, .bind_flags = XDP_COPY | XDP_USE_NEED_WAKEUP,
    };
    err = xsk_socket__create(&xsk, ifname, (__u32)queue, umem, &rx, NULL, &scfg);
    if (err) die("xsk_socket__create", err);
    int fd = xsk_socket__fd(xsk);

    /* Every frame starts in the fill ring. */
    __u32 idx = 0;
    if (xsk_ring_prod__reserve(&fill, NUM_FRAMES, &idx) != NUM_FRAMES) die("fill ring reserve", ENOSPC);
    for (__u32 i = 0; i < NUM_FRAMES; i++) *xsk_ring_prod__fill_addr(&fill, idx++) = (__u64)i * FRAME_SIZE;
    xsk_ring_prod__submit(&fill, NUM_FRAMES);

    fprintf(stderr, "xdp_rx: receiving on %s queue %d\n", ifname, queue);
    static __u64 pending[NUM_FRAMES];
    __u32 npending = 0;
    uint64_t packets = 0, bytes = 0;
    unsigned sum = 0;
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    while (!stop) {
        __u32 idx_rx = 0;
        __u32 n = xsk_ring_cons__peek(&rx, BATCH, &idx_rx);
        if (n == 0) {
            if (xsk_ring_prod__needs_wakeup(&fill))
                recvfrom(fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
            if (poll(&pfd, 1, 1000) > 0 && coalesce_us > 0) {
                struct timespec ts = { .tv_sec = coalesce_us / 1000000, .tv_nsec = (coalesce_us % 1000000) * 1000 };
                nanosleep(&ts, NULL);
            }
            continue;
        }
        for (__u32 i = 0; i < n; i++) {
            const struct xdp_desc *d = xsk_ring_cons__rx_desc(&rx, idx_rx++);
            const uint8_t *data = xsk_umem__get_data(area, d->addr);
            sum += data[0];
            bytes += d->len;
            pending[npending++] = xsk_umem__extract_addr(d->addr);
        }
        xsk_ring_cons__release(&rx, n);
        packets += n;
        /* The kernel publishes how far it read the fill ring lazily, so frames it already
         * handed us may still seem to occupy it: what does not fit now is returned later. */
        __u32 idx_fill = 0;
        __u32 k = xsk_ring_prod__reserve(&fill, npending, &idx_fill);
        for (__u32 i = 0; i < k; i++) *xsk_ring_prod__fill_addr(&fill, idx_fill++) = pending[i];
        xsk_ring_prod__submit(&fill, k);
        memmove(pending, pending + k, (npending - k) * sizeof pending[0]);
        npending -= k;
    }

    struct xdp_statistics st;
    memset(&st, 0, sizeof st);
    socklen_t len = sizeof st;
    if (getsockopt(fd, SOL_XDP, XDP_STATISTICS, &st, &len) != 0) memset(&st, 0, sizeof st);
    printf("{\"packets\":%llu,\"bytes\":%llu,\"rx_dropped\":%llu,\"rx_invalid\":%llu,"
           "\"rx_ring_full\":%llu,\"fill_ring_empty\":%llu,\"checksum\":%u}\n",
           (unsigned long long)packets, (unsigned long long)bytes,
           (unsigned long long)st.rx_dropped, (unsigned long long)st.rx_invalid_descs,
           (unsigned long long)st.rx_ring_full, (unsigned long long)st.rx_fill_ring_empty_descs, sum & 0xff);
    fflush(stdout);
    xsk_socket__delete(xsk);
    xsk_umem__delete(umem);
    munmap(area, size);
    return 0;
}
