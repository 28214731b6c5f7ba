/* wait.c -- sleeping without being woken per packet, and a descriptor that really becomes
 * readable when packets wait.
 *
 * The selectable descriptor a program gets (pcap_get_selectable_fd, pcap_fileno) is an epoll
 * instance holding three descriptors:
 *   - the ring's doorbell, an eventfd lb writes 1 to after it publishes while a lane's
 *     consumer_waiting has LB_WAIT_DOORBELL, and at end of stream (a tap has its own, which only
 *     pcap_breakloop and the end of the stream ring);
 *   - a timerfd that ends a nap;
 *   - the connection to lb, readable when lb goes away.
 * While traffic flows the reader naps (Nap.swift, ported): it lets packets gather for up to
 * 10 ms (at most the read timeout, and never longer than a quarter of the ring at the rate just
 * seen) instead of asking lb to ring per publish; idle, it arms the doorbell. The rules that keep
 * select() honest: from activation on, the doorbell is armed; the doorbell and the timer are
 * drained only when the ring was found empty; a read call that returns to the program with
 * packets left behind makes sure the doorbell is rung, and one that emptied the ring naps (the
 * timer) or arms the doorbell before it returns. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include "lbp.h"

/* A tap cannot ask lb to wake it: when idle it looks again this often. */
#define LBP_TAP_IDLE_NS 10000000ull

uint64_t lbp_mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void lbp_nap_init(struct lbp_nap *n, uint64_t max_ns, uint64_t room_packets, uint64_t room_bytes) {
    memset(n, 0, sizeof *n);
    n->max_ns = max_ns;
    n->first_ns = max_ns < 50000 ? max_ns : 50000;
    n->room_packets = room_packets;
    n->room_bytes = room_bytes;
}

static void nap_reset(struct lbp_nap *n) {
    n->current = n->idle = n->cycle_start = n->packets = n->bytes = 0;
}

/* The ring was found empty at `now`: how long to nap, or 0 to wait to be woken. */
static uint64_t nap_next(struct lbp_nap *n, uint64_t now) {
    if (n->max_ns == 0) return 0;
    if (n->packets == 0) {
        if (n->current == 0) return 0;
        n->idle += now - n->cycle_start;
        if (n->idle >= n->max_ns) {
            nap_reset(n);
            return 0;
        }
        n->current = n->current * 2 < n->cap ? n->current * 2 : n->cap;
        n->cycle_start = now;
        return n->current;
    }
    uint64_t nap = n->current == 0 ? n->first_ns : (n->current * 2 < n->max_ns ? n->current * 2 : n->max_ns);
    n->cap = n->max_ns;
    if (n->cycle_start != 0) {
        uint64_t cycle = now - n->cycle_start;
        if (cycle == 0) cycle = 1;
        /* the time the ring takes to fill a quarter at the rate of the cycle that just ended */
        double pps = (double)n->packets * 1e9 / (double)cycle, bps = (double)n->bytes * 1e9 / (double)cycle;
        if (pps > 0 && (double)n->room_packets * 1e9 / pps < (double)n->cap) n->cap = (uint64_t)((double)n->room_packets * 1e9 / pps);
        if (bps > 0 && (double)n->room_bytes * 1e9 / bps < (double)n->cap) n->cap = (uint64_t)((double)n->room_bytes * 1e9 / bps);
        if (n->cap < 1000) n->cap = 1000;
    }
    if (nap > n->cap) nap = n->cap;
    n->current = nap;
    n->cycle_start = now;
    n->idle = n->packets = n->bytes = 0;
    return nap;
}

static void drain(struct lbp *h) {
    uint64_t v;
    ssize_t r = read(h->doorbell, &v, sizeof v);
    if (h->timer_set) {
        r = read(h->timer, &v, sizeof v);
        struct itimerspec off;
        memset(&off, 0, sizeof off);
        timerfd_settime(h->timer, 0, &off, NULL);
        h->timer_set = 0;
    }
    (void)r;
    h->readable = 0;
}

static void set_timer(struct lbp *h, uint64_t ns) {
    struct itimerspec t;
    memset(&t, 0, sizeof t);
    t.it_value.tv_sec = (time_t)(ns / 1000000000u);
    t.it_value.tv_nsec = (long)(ns % 1000000000u);
    if (t.it_value.tv_sec == 0 && t.it_value.tv_nsec == 0) t.it_value.tv_nsec = 1;
    timerfd_settime(h->timer, 0, &t, NULL);
    h->timer_set = 1;
}

/* Asks lb to ring the doorbell at its next publish; 1 if packets came meanwhile (then disarmed). */
static int arm(struct lbp *h) {
    for (uint32_t k = 0; k < h->lanes; k++) __atomic_store_n(h->lane[k].consumer_waiting, LB_WAIT_DOORBELL, __ATOMIC_SEQ_CST);
    h->armed = 1;
    for (uint32_t k = 0; k < h->lanes; k++) {
        if (__atomic_load_n(h->lane[k].head, __ATOMIC_SEQ_CST) != h->lane[k].pos) {
            lbp_disarm(h);
            return 1;
        }
    }
    return 0;
}

void lbp_disarm(struct lbp *h) {
    if (!h->armed) return;
    for (uint32_t k = 0; k < h->lanes; k++) __atomic_store_n(h->lane[k].consumer_waiting, 0, __ATOMIC_RELAXED);
    h->armed = 0;
}

/* Makes the selectable descriptor readable (breakloop, end of stream, packets left behind).
 * Async-signal-safe. */
void lbp_wake_self(struct lbp *h) {
    uint64_t one = 1;
    ssize_t r = write(h->doorbell, &one, sizeof one);
    (void)r;
    h->readable = 1;
}

/* Makes the selectable descriptor quiet: nothing will come. */
void lbp_quiet(struct lbp *h) {
    lbp_disarm(h);
    drain(h);
}

/* At activation: a consumer arms the doorbell, a tap sets its timer, so a program that polls
 * before its first read is woken. */
void lbp_wait_start(struct lbp *h) {
    if (h->tap) set_timer(h, LBP_TAP_IDLE_NS);
    else if (arm(h)) lbp_wake_self(h);
}

/* How long to sleep now that the ring is empty: a nap, or 0 to wait to be woken. */
static uint64_t next_sleep(struct lbp *h) {
    uint64_t nap = nap_next(&h->nap, lbp_mono_ns());
    if (nap == 0 && h->tap) nap = LBP_TAP_IDLE_NS;
    return nap;
}

/* Blocks until packets may be there (1), the timeout passes (0; timeout_ms < 0: never), or
 * pcap_breakloop (-2). The end of the stream and lb's departure return 1: the caller reads
 * lbp_settled. */
int lbp_wait(struct lbp *h, int timeout_ms) {
    uint64_t start = lbp_mono_ns();
    uint64_t deadline = timeout_ms >= 0 ? start + (uint64_t)timeout_ms * 1000000u : UINT64_MAX;
    for (;;) {
        if (h->brk) return -2;
        if (lbp_has_packets(h) || lbp_settled(h) != LBP_EMPTY) {
            lbp_disarm(h);
            return 1;
        }
        uint64_t now = lbp_mono_ns();
        if (now >= deadline) return 0;
        uint64_t sleep = next_sleep(h);
        drain(h);
        if (h->brk) return -2;               /* a breakloop whose wake-up the drain took */
        if (sleep == 0 && arm(h)) continue;
        if (deadline != UINT64_MAX && (sleep == 0 || deadline - now < sleep)) sleep = deadline - now;
        struct pollfd pfd = { .fd = h->epfd, .events = POLLIN };
        struct timespec ts = { (time_t)(sleep / 1000000000u), (long)(sleep % 1000000000u) };
        int r = ppoll(&pfd, 1, sleep == 0 ? NULL : &ts, NULL);
        if (r < 0 && errno != EINTR) return 0;
    }
}

/* A read call found the ring empty: arrange for the selectable descriptor to become readable
 * when there is something to read (a nap's end, or lb's doorbell). */
void lbp_prepare_poll(struct lbp *h) {
    if (h->ended) return;
    uint64_t sleep = next_sleep(h);
    drain(h);
    if (sleep > 0) {
        set_timer(h, sleep);
        return;
    }
    if (arm(h)) lbp_wake_self(h);
}
