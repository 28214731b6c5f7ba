/*
 * lbp.h -- liblbpcap's internals: one `struct lbp` per capture handle on an lb ring.
 *
 *   table.c     which pcap_t handles are lb's (a lock-free side table)
 *   real.c      the real libpcap's functions, found with dlsym(RTLD_NEXT)
 *   attach.c    device names, the run directory, the attach handshake, the mappings
 *   ring.c      reading the lanes: zero-copy packets, release, taps, loss counters
 *   wait.c      sleeping: the doorbell, naps, the selectable descriptor
 *   capture.c   the pcap_* entry points for lb handles
 *   devices.c   findalldevs, lookupnet, and the interface ioctls some programs make
 */
#ifndef LBP_H
#define LBP_H

#include <pcap/pcap.h>
#include <stdint.h>
#include <stddef.h>
#include "lb_ring.h"

#define LBP_EXPORT __attribute__((visibility("default")))

/* What a read found, when it delivered nothing. */
enum lbp_state { LBP_EMPTY = 0, LBP_EOS = 1, LBP_GONE = 2 };

/* The reader's end of one lane (a port of LaneConsumer). */
struct lbp_lane {
    const uint64_t *head;            /* lb_lane_header.head (DATA) */
    const uint64_t *reclaim;         /* lb_lane_header.reclaim (DATA) */
    const uint64_t *dropped;         /* lb_lane_header.dropped (DATA) */
    uint64_t *tail;                  /* lb_lane_control.tail (CONTROL); NULL for a tap */
    uint32_t *consumer_waiting;
    uint32_t *producer_waiting;
    const struct lb_desc *descs;
    const uint8_t *data;
    uint64_t pos;                    /* next descriptor to read */
    uint64_t cached_head;
    uint64_t released;               /* the tail last stored */
};

/* A port of Sources/LBRing/Nap.swift: how long to sleep when the ring is empty while traffic
 * flows, instead of being woken per packet. */
struct lbp_nap {
    uint64_t max_ns, first_ns, room_packets, room_bytes;
    uint64_t current, cap, idle, cycle_start, packets, bytes;
};

struct lbp {
    pcap_t *p;                       /* the handle the program holds: a pcap_open_dead() token */
    pcap_t *dead;                    /* a dead handle with the activated snaplen and precision
                                      * (dump files are opened on it) */
    char device[64];
    char group[LB_GROUP_NAME_MAX];
    uint32_t ring;
    int tap;

    /* settings (pcap_set_*) */
    int snaplen, promisc, timeout_ms, immediate, precision, buffer_size, rfmon, nonblock;
    int activated;

    /* the attachment */
    int sock;                        /* the connection to lb: open while attached */
    int doorbell;                    /* lb's eventfd (a tap makes its own, for breakloop) */
    int timer;                       /* timerfd: ends a nap for a program that polls */
    int epfd;                        /* the selectable descriptor: doorbell, timer, sock */
    void *data_map, *control_map;
    size_t data_len, control_len;
    const struct lb_ring_info *info;
    struct lb_consumer_report *report;
    int32_t pid;                     /* ours, for the report */
    uint32_t lanes, lane_now, lane_run;
    uint32_t slots, max_caplen;
    uint64_t data_size;
    struct lbp_lane lane[LB_MAX_LANES];

    /* reading */
    int armed;                       /* LB_WAIT_DOORBELL is set in the lanes */
    int timer_set;
    int readable;                    /* we rang the doorbell ourselves and have not drained it since */
    volatile int brk;                /* pcap_breakloop */
    int ended;                       /* LBP_EOS / LBP_GONE once seen with nothing left */
    int end_calls;                   /* read calls that have reported the end */
    uint64_t unreleased;
    uint64_t taken;                  /* packets read from the ring (before the program's filter) */
    uint64_t passed;                 /* ... that passed the filter */
    uint64_t bad;                    /* descriptors out of range (never from a sane lb) */
    uint64_t missed;                 /* a tap: packets lb reused before the tap copied them */
    uint64_t drop_base, ifdrop_base;
    struct lbp_nap nap;
    struct bpf_program filter;       /* our own deep copy; bf_insns NULL: no filter */
    struct pcap_pkthdr hdr;          /* pcap_next_ex's header: writable (Zeek zeroes it) */
    uint8_t *scratch;                /* a tap's copy of the packet */
};

/* table.c */
struct lbp *lbp_find(pcap_t *p);
int lbp_register(struct lbp *h);
void lbp_unregister(struct lbp *h);

/* real.c: the real libpcap's version of an entry point this library defines */
void *lbp_real(const char *name);
#define REAL(name) ((__typeof__(&name))lbp_real(#name))

/* attach.c */
int lbp_claims(const char *device);
int lbp_parse(const char *device, int *tap, char group[LB_GROUP_NAME_MAX], uint32_t *ring, char *err);
const char *lbp_run_dir(char *buf, size_t len);
int lbp_attach(struct lbp *h, char *err);
void lbp_detach(struct lbp *h);
int lbp_probe_ring(const char *run_dir, const char *group, uint32_t *ring_count, int32_t *pid);
void lbp_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ring.c */
void lbp_start(struct lbp *h);
int lbp_next(struct lbp *h, const uint8_t **data);
void lbp_release(struct lbp *h);
void lbp_report(struct lbp *h);
int lbp_has_packets(struct lbp *h);
enum lbp_state lbp_settled(struct lbp *h);
uint64_t lbp_ring_drops(const struct lbp *h);

/* wait.c */
void lbp_nap_init(struct lbp_nap *n, uint64_t max_ns, uint64_t room_packets, uint64_t room_bytes);
/* What was read since the last nap (per packet: inline). */
static inline void lbp_nap_count(struct lbp_nap *n, uint64_t packets, uint64_t bytes) {
    n->packets += packets;
    n->bytes += bytes;
}
int lbp_wait(struct lbp *h, int timeout_ms);
void lbp_prepare_poll(struct lbp *h);
void lbp_disarm(struct lbp *h);
void lbp_wake_self(struct lbp *h);
void lbp_wait_start(struct lbp *h);
void lbp_quiet(struct lbp *h);
uint64_t lbp_mono_ns(void);

/* capture.c */
void lbp_seterr(struct lbp *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
