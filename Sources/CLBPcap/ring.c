/* ring.c -- reading a ring's lanes (a port of LaneConsumer and RingConsumer).
 *
 * A consumer hands the program a pointer into the ring (zero copy); what it has read goes
 * back to lb (the lane's tail) at the next read call, in batches, and always before it sleeps,
 * so lb never sees an idle reader as a stuck one. A tap copies each packet out and checks,
 * after the copy, that lb had not reused its space (the seqlock of docs/ring-protocol.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "lbp.h"

/* Release at least this often while packets keep coming: lb reuses space only behind the tail. */
#define LBP_RELEASE_EVERY 64
/* Packets ahead of the one handed over whose first cache line is prefetched (bench/README.md:
 * pcap hands packets over one at a time, so without it every first touch is a lone miss). */
#define LBP_PREFETCH 16
/* Packets taken from one lane before the next gets its turn. */
#define LBP_LANE_RUN 256

static uint64_t wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void lbp_start(struct lbp *h) {
    const struct lb_ring_info *i = h->info;
    const uint8_t *base = (const uint8_t *)h->data_map;
    h->lanes = i->lane_count;
    h->slots = i->desc_count;
    h->data_size = i->data_size;
    h->max_caplen = i->max_caplen;
    for (uint32_t k = 0; k < h->lanes; k++) {
        struct lbp_lane *l = &h->lane[k];
        const uint8_t *lane = base + i->lane_offset + (uint64_t)k * i->lane_stride;
        l->head = (const uint64_t *)lane;
        l->reclaim = (const uint64_t *)(lane + offsetof(struct lb_lane_header, reclaim));
        l->dropped = (const uint64_t *)(lane + offsetof(struct lb_lane_header, dropped));
        l->descs = (const struct lb_desc *)(lane + i->desc_offset);
        l->data = lane + i->data_offset;
        uint64_t head = __atomic_load_n(l->head, __ATOMIC_ACQUIRE);
        if (h->control_map != NULL) {
            uint8_t *c = (uint8_t *)h->control_map + LB_CONTROL_LANES + (size_t)k * sizeof(struct lb_lane_control);
            l->tail = (uint64_t *)c;
            l->consumer_waiting = (uint32_t *)(c + offsetof(struct lb_lane_control, consumer_waiting));
            l->producer_waiting = (uint32_t *)(c + offsetof(struct lb_lane_control, producer_waiting));
            /* continue where the ring's last consumer left; a tail out of range starts fresh */
            l->pos = __atomic_load_n(l->tail, __ATOMIC_ACQUIRE);
            if (head - l->pos > h->slots) l->pos = head;
            __atomic_store_n(l->consumer_waiting, 0, __ATOMIC_RELAXED);
        } else {
            l->pos = head;                       /* a tap starts at "now" */
        }
        l->cached_head = l->pos;
        l->released = l->pos;
    }
    if (h->control_map != NULL) h->report = (struct lb_consumer_report *)h->control_map;
    h->pid = (int32_t)getpid();          /* getpid is a system call: once, not per report */
    h->drop_base = lbp_ring_drops(h);
    h->ifdrop_base = __atomic_load_n(&i->ingress_drops, __ATOMIC_RELAXED);
    /* nap up to 10 ms (Zeek's and Suricata's TPACKET_V3 block timeout), never longer than the
     * program's read timeout; not at all in immediate mode (a tap still looks every 1 ms) */
    uint64_t nap = h->immediate ? 0 : 10000000u;
    if (h->timeout_ms > 0 && (uint64_t)h->timeout_ms * 1000000u < nap) nap = (uint64_t)h->timeout_ms * 1000000u;
    if (h->tap && nap == 0) nap = 1000000u;
    uint64_t room = h->slots / 4;
    lbp_nap_init(&h->nap, nap, room ? room : 1, h->data_size / 4);
    lbp_report(h);
    lbp_wait_start(h);
}

uint64_t lbp_ring_drops(const struct lbp *h) {
    uint64_t sum = 0;
    for (uint32_t k = 0; k < h->lanes; k++) sum += __atomic_load_n(h->lane[k].dropped, __ATOMIC_RELAXED);
    return sum;
}

/* The worker report lb shows for the ring (packets_processed_by_worker, worker_report_age_s):
 * what the program has taken. */
void lbp_report(struct lbp *h) {
    struct lb_consumer_report *r = h->report;
    if (r == NULL) return;
    __atomic_store_n(&r->pid, h->pid, __ATOMIC_RELAXED);
    __atomic_store_n(&r->heartbeat_ns, wall_ns(), __ATOMIC_RELAXED);
    __atomic_store_n(&r->packets_processed, h->taken, __ATOMIC_RELAXED);
}

/* Hands everything read so far back to lb, and wakes lb if it waits for room (a replay). */
void lbp_release(struct lbp *h) {
    if (h->unreleased == 0 || h->tap) return;
    for (uint32_t k = 0; k < h->lanes; k++) {
        struct lbp_lane *l = &h->lane[k];
        if (l->pos == l->released) continue;
        /* sequentially consistent: the load of producer_waiting must not pass the store */
        __atomic_store_n(l->tail, l->pos, __ATOMIC_SEQ_CST);
        l->released = l->pos;
        if (__atomic_load_n(l->producer_waiting, __ATOMIC_SEQ_CST) != 0)
            syscall(SYS_futex, l->tail, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
    }
    h->unreleased = 0;
    lbp_report(h);
}

int lbp_has_packets(struct lbp *h) {
    for (uint32_t k = 0; k < h->lanes; k++) {
        if (__atomic_load_n(h->lane[k].head, __ATOMIC_ACQUIRE) != h->lane[k].pos) return 1;
    }
    return 0;
}

/* Nothing to read: has the stream ended (LB_STATE_EOS/CLOSED, every packet read), has lb gone
 * away without ending it (its end of the connection closed), or is the ring just empty? The
 * state is loaded before the heads: lb publishes its last packets before it stores EOS. */
enum lbp_state lbp_settled(struct lbp *h) {
    uint32_t state = __atomic_load_n(&h->info->state, __ATOMIC_ACQUIRE);
    if (lbp_has_packets(h)) return LBP_EMPTY;
    if (state == LB_STATE_EOS || state == LB_STATE_CLOSED) return LBP_EOS;
    char c;
    ssize_t r = recv(h->sock, &c, 1, MSG_DONTWAIT | MSG_PEEK);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        if (lbp_has_packets(h)) return LBP_EMPTY;
        state = __atomic_load_n(&h->info->state, __ATOMIC_ACQUIRE);
        return state == LB_STATE_EOS || state == LB_STATE_CLOSED ? LBP_EOS : LBP_GONE;
    }
    return LBP_EMPTY;
}

/* The next lane with a packet, starting with the current one; -1 when all are empty. */
static inline int pick_lane(struct lbp *h) {
    for (uint32_t tried = 0; tried < h->lanes; tried++) {
        struct lbp_lane *l = &h->lane[h->lane_now];
        if (h->lane_run < LBP_LANE_RUN) {
            if (l->pos != l->cached_head) return (int)h->lane_now;
            l->cached_head = __atomic_load_n(l->head, __ATOMIC_ACQUIRE);
            if (l->pos != l->cached_head) return (int)h->lane_now;
        }
        h->lane_run = 0;
        h->lane_now = h->lane_now + 1 == h->lanes ? 0 : h->lane_now + 1;
    }
    /* every lane was empty, or the one with packets had its run: look once more from here */
    for (uint32_t tried = 0; tried < h->lanes; tried++) {
        struct lbp_lane *l = &h->lane[h->lane_now];
        if (l->pos != l->cached_head) return (int)h->lane_now;
        l->cached_head = __atomic_load_n(l->head, __ATOMIC_ACQUIRE);
        if (l->pos != l->cached_head) return (int)h->lane_now;
        h->lane_now = h->lane_now + 1 == h->lanes ? 0 : h->lane_now + 1;
    }
    return -1;
}

static inline void fill_header(struct lbp *h, struct pcap_pkthdr *hdr, uint64_t ts, uint32_t caplen, uint32_t wirelen) {
    hdr->ts.tv_sec = (time_t)(ts / 1000000000u);
    uint64_t frac = ts % 1000000000u;
    hdr->ts.tv_usec = (suseconds_t)(h->precision == PCAP_TSTAMP_PRECISION_NANO ? frac : frac / 1000u);
    hdr->caplen = caplen < (uint32_t)h->snaplen ? caplen : (uint32_t)h->snaplen;
    hdr->len = wirelen < caplen ? caplen : wirelen;
}

/* A tap's packet: copied out, then checked against lb's reclaim point. 1: a good copy. */
static int tap_copy(struct lbp *h, struct lbp_lane *l, struct lb_desc *d) {
    uint64_t r = __atomic_load_n(l->reclaim, __ATOMIC_ACQUIRE);
    if (r - l->pos < (1ull << 63) && r != l->pos) {      /* lapped: skip what lb may have reused */
        h->missed += r - l->pos;
        l->pos = r;
        l->cached_head = r;
        return 0;
    }
    uint64_t i = l->pos++;
    memcpy(d, &l->descs[i & (h->slots - 1)], sizeof *d);
    uint64_t off = d->data_off, len = d->caplen;
    int sane = off < h->data_size && len <= h->max_caplen && off + len <= h->data_size;
    if (sane) memcpy(h->scratch, l->data + off, len);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    uint64_t after = __atomic_load_n(l->reclaim, __ATOMIC_ACQUIRE);
    if ((after - i < (1ull << 63) && after > i) || !sane) {
        h->missed++;
        return 0;
    }
    return 1;
}

/* The next packet that passes the program's filter, with h->hdr filled: 1, or 0 when every lane
 * is empty. A consumer's *data points into the ring until the next release. */
int lbp_next(struct lbp *h, const uint8_t **data) {
    for (;;) {
        /* the program is done with everything it got before this call */
        if (h->unreleased >= LBP_RELEASE_EVERY) lbp_release(h);
        int k = pick_lane(h);
        if (k < 0) {
            lbp_release(h);
            return 0;
        }
        struct lbp_lane *l = &h->lane[k];
        h->lane_run++;
        const uint8_t *bytes;
        uint32_t caplen, wirelen;
        uint64_t ts;
        if (h->tap) {
            struct lb_desc d;
            if (!tap_copy(h, l, &d)) continue;
            bytes = h->scratch;
            caplen = d.caplen, wirelen = d.wirelen, ts = d.ts_ns;
        } else {
            const struct lb_desc *d = &l->descs[l->pos & (h->slots - 1)];
            uint64_t ahead = l->pos + LBP_PREFETCH;
            /* on live traffic the cached head lags: look again now and then, so the prefetch
             * distance holds */
            if (ahead >= l->cached_head && (l->pos & 15) == 0) l->cached_head = __atomic_load_n(l->head, __ATOMIC_ACQUIRE);
            if (ahead < l->cached_head) {
                uint64_t off = l->descs[ahead & (h->slots - 1)].data_off;
                if (off < h->data_size) __builtin_prefetch(l->data + off);
            }
            l->pos++;
            h->unreleased++;
            uint64_t off = d->data_off;
            caplen = d->caplen, wirelen = d->wirelen, ts = d->ts_ns;
            if (__builtin_expect(off >= h->data_size || caplen > h->max_caplen || off + caplen > h->data_size, 0)) {
                h->bad++;
                h->taken++;
                continue;
            }
            bytes = l->data + off;
        }
        h->taken++;
        lbp_nap_count(&h->nap, 1, caplen);
        if (h->filter.bf_insns != NULL && bpf_filter(h->filter.bf_insns, bytes, wirelen < caplen ? caplen : wirelen, caplen) == 0)
            continue;
        h->passed++;
        fill_header(h, &h->hdr, ts, caplen, wirelen);
        *data = bytes;
        return 1;
    }
}
