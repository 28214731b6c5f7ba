/* capture.c -- the pcap_* entry points, for handles on lb's rings.
 *
 * Each function below replaces libpcap's of the same name while the library is preloaded.
 * For a handle that is not lb's (any other device, any capture file) it calls the real one
 * and nothing else changes. For lb's handles the program holds a pcap_open_dead() token, so
 * that calls this library does not replace (pcap_compile, pcap_geterr, pcap_datalink, ...)
 * work on a real pcap_t; errors are written into that token's error buffer. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lbp.h"
#include "lbpcap.h"

#define LBP_MAX_SNAPLEN 262144
/* read results beside packet counts: the stream ended (the caller maps it to what libpcap
 * returns at the end of a capture file) */
#define LBP_R_EOS (-100)

LBP_EXPORT const char *lbpcap_version(void) { return LBPCAP_VERSION; }

void lbp_seterr(struct lbp *h, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pcap_geterr(h->p), PCAP_ERRBUF_SIZE, fmt, ap);
    va_end(ap);
}

/* ---- creating, activating, closing ----------------------------------------------------------- */

static pcap_t *lbp_create(const char *device, char *errbuf) {
    struct lbp *h = calloc(1, sizeof *h);
    if (h == NULL) {
        snprintf(errbuf, PCAP_ERRBUF_SIZE, "%s: out of memory", device);
        return NULL;
    }
    h->sock = h->doorbell = h->timer = h->epfd = -1;
    h->snaplen = LBP_MAX_SNAPLEN;
    h->precision = PCAP_TSTAMP_PRECISION_MICRO;
    if (lbp_parse(device, &h->tap, h->group, &h->ring, errbuf) != 0) {
        free(h);
        return NULL;
    }
    snprintf(h->device, sizeof h->device, "%s", device);
    h->p = pcap_open_dead(DLT_EN10MB, LBP_MAX_SNAPLEN);
    if (h->p == NULL || lbp_register(h) != 0) {
        snprintf(errbuf, PCAP_ERRBUF_SIZE, "%s: %s", device, h->p == NULL ? "out of memory" : "too many open lb handles");
        if (h->p != NULL) REAL(pcap_close)(h->p);
        free(h);
        return NULL;
    }
    return h->p;
}

LBP_EXPORT pcap_t *pcap_create(const char *device, char *errbuf) {
    if (!lbp_claims(device)) return REAL(pcap_create)(device, errbuf);
    return lbp_create(device, errbuf);
}

LBP_EXPORT int pcap_activate(pcap_t *p) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_activate)(p);
    if (h->activated) {
        lbp_seterr(h, "%s: already activated", h->device);
        return PCAP_ERROR_ACTIVATED;
    }
    if (h->rfmon) {
        lbp_seterr(h, "%s: an lb ring has no monitor mode", h->device);
        return PCAP_ERROR_RFMON_NOTSUP;
    }
    if (h->snaplen <= 0 || h->snaplen > LBP_MAX_SNAPLEN) h->snaplen = LBP_MAX_SNAPLEN;   /* as libpcap does */
    char err[PCAP_ERRBUF_SIZE];
    int status = lbp_attach(h, err);
    if (status != 0) {
        snprintf(pcap_geterr(p), PCAP_ERRBUF_SIZE, "%s", err);
        return status;
    }
    if (h->tap && (h->scratch = malloc(h->max_caplen)) == NULL) {
        lbp_detach(h);
        lbp_seterr(h, "%s: out of memory", h->device);
        return PCAP_ERROR;
    }
    h->dead = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, h->snaplen, (u_int)h->precision);
    if (h->dead == NULL) {
        lbp_detach(h);
        lbp_seterr(h, "%s: out of memory", h->device);
        return PCAP_ERROR;
    }
    h->activated = 1;
    return 0;
}

LBP_EXPORT pcap_t *pcap_open_live(const char *device, int snaplen, int promisc, int to_ms, char *errbuf) {
    if (!lbp_claims(device)) return REAL(pcap_open_live)(device, snaplen, promisc, to_ms, errbuf);
    pcap_t *p = lbp_create(device, errbuf);
    if (p == NULL) return NULL;
    struct lbp *h = lbp_find(p);
    h->snaplen = snaplen;
    h->promisc = promisc;
    h->timeout_ms = to_ms;
    if (pcap_activate(p) != 0) {
        snprintf(errbuf, PCAP_ERRBUF_SIZE, "%s", pcap_geterr(p));
        pcap_close(p);
        return NULL;
    }
    return p;
}

LBP_EXPORT void pcap_close(pcap_t *p) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) {
        REAL(pcap_close)(p);
        return;
    }
    lbp_unregister(h);
    if (h->activated) {
        lbp_disarm(h);
        lbp_release(h);       /* the program is done with what it got */
    }
    lbp_detach(h);
    if (h->dead != NULL) REAL(pcap_close)(h->dead);
    REAL(pcap_close)(h->p);
    free(h->filter.bf_insns);
    free(h->scratch);
    free(h);
}

/* ---- settings --------------------------------------------------------------------------------- */

#define SETTER(fn, field)                                                     \
    LBP_EXPORT int fn(pcap_t *p, int v) {                                     \
        struct lbp *h = lbp_find(p);                                          \
        if (h == NULL) return REAL(fn)(p, v);                                 \
        if (h->activated) return PCAP_ERROR_ACTIVATED;                        \
        h->field = v;                                                         \
        return 0;                                                             \
    }

SETTER(pcap_set_snaplen, snaplen)
SETTER(pcap_set_promisc, promisc)
SETTER(pcap_set_timeout, timeout_ms)
SETTER(pcap_set_buffer_size, buffer_size)
SETTER(pcap_set_immediate_mode, immediate)
SETTER(pcap_set_rfmon, rfmon)

LBP_EXPORT int pcap_set_protocol_linux(pcap_t *p, int protocol) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_set_protocol_linux)(p, protocol);
    return h->activated ? PCAP_ERROR_ACTIVATED : 0;
}

LBP_EXPORT int pcap_can_set_rfmon(pcap_t *p) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_can_set_rfmon)(p);
    return 0;
}

LBP_EXPORT int pcap_set_tstamp_precision(pcap_t *p, int precision) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_set_tstamp_precision)(p, precision);
    if (h->activated) return PCAP_ERROR_ACTIVATED;
    if (precision != PCAP_TSTAMP_PRECISION_MICRO && precision != PCAP_TSTAMP_PRECISION_NANO)
        return PCAP_ERROR_TSTAMP_PRECISION_NOTSUP;
    h->precision = precision;
    return 0;
}

LBP_EXPORT int pcap_get_tstamp_precision(pcap_t *p) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_get_tstamp_precision)(p);
    return h->precision;
}

/* lb stamps packets on the host (the kernel's or lb's clock): one type, "host". */
LBP_EXPORT int pcap_set_tstamp_type(pcap_t *p, int type) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_set_tstamp_type)(p, type);
    if (h->activated) return PCAP_ERROR_ACTIVATED;
    return type == PCAP_TSTAMP_HOST ? 0 : PCAP_WARNING_TSTAMP_TYPE_NOTSUP;
}

LBP_EXPORT int pcap_list_tstamp_types(pcap_t *p, int **types) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_list_tstamp_types)(p, types);
    *types = malloc(sizeof(int));
    if (*types == NULL) {
        lbp_seterr(h, "%s: out of memory", h->device);
        return PCAP_ERROR;
    }
    (*types)[0] = PCAP_TSTAMP_HOST;
    return 1;
}

LBP_EXPORT int pcap_setnonblock(pcap_t *p, int nonblock, char *errbuf) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_setnonblock)(p, nonblock, errbuf);
    h->nonblock = nonblock != 0;
    return 0;
}

LBP_EXPORT int pcap_getnonblock(pcap_t *p, char *errbuf) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_getnonblock)(p, errbuf);
    return h->nonblock;
}

LBP_EXPORT int pcap_snapshot(pcap_t *p) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_snapshot)(p);
    return h->activated ? h->snaplen : PCAP_ERROR_NOT_ACTIVATED;
}

/* Every lb ring carries Ethernet frames (lb writes a header where the inner packet has none). */
LBP_EXPORT int pcap_list_datalinks(pcap_t *p, int **dlts) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_list_datalinks)(p, dlts);
    *dlts = malloc(sizeof(int));
    if (*dlts == NULL) {
        lbp_seterr(h, "%s: out of memory", h->device);
        return PCAP_ERROR;
    }
    (*dlts)[0] = DLT_EN10MB;
    return 1;
}

LBP_EXPORT int pcap_set_datalink(pcap_t *p, int dlt) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_set_datalink)(p, dlt);
    if (dlt == DLT_EN10MB) return 0;
    lbp_seterr(h, "%s: lb rings carry Ethernet frames only (DLT_EN10MB)", h->device);
    return PCAP_ERROR;
}

LBP_EXPORT int pcap_setdirection(pcap_t *p, pcap_direction_t d) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_setdirection)(p, d);
    if (d == PCAP_D_INOUT) return 0;
    lbp_seterr(h, "%s: an lb ring has no direction: it carries both directions of every flow", h->device);
    return PCAP_ERROR;
}

/* The program's own filter, applied to each packet as delivered (after lb's decapsulation). */
LBP_EXPORT int pcap_setfilter(pcap_t *p, struct bpf_program *fp) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_setfilter)(p, fp);
    if (fp == NULL || (fp->bf_len > 0 && fp->bf_insns == NULL) || fp->bf_len > (1u << 20)
        || (fp->bf_len > 0 && !bpf_validate(fp->bf_insns, (int)fp->bf_len))) {
        lbp_seterr(h, "%s: invalid BPF program", h->device);
        return PCAP_ERROR;
    }
    /* our own copy: programs free theirs with pcap_freecode right after */
    struct bpf_insn *copy = NULL;
    if (fp->bf_len > 0) {
        copy = malloc(fp->bf_len * sizeof *copy);
        if (copy == NULL) {
            lbp_seterr(h, "%s: out of memory", h->device);
            return PCAP_ERROR;
        }
        memcpy(copy, fp->bf_insns, fp->bf_len * sizeof *copy);
    }
    free(h->filter.bf_insns);
    h->filter.bf_insns = copy;
    h->filter.bf_len = fp->bf_len;
    return 0;
}

LBP_EXPORT int pcap_get_selectable_fd(pcap_t *p) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_get_selectable_fd)(p);
    return h->activated ? h->epfd : -1;
}

LBP_EXPORT int pcap_fileno(pcap_t *p) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_fileno)(p);
    return h->activated ? h->epfd : -1;
}

/* The selectable descriptor is enough by itself: no timeout needed beside it. */
LBP_EXPORT const struct timeval *pcap_get_required_select_timeout(pcap_t *p) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_get_required_select_timeout)(p);
    return NULL;
}

LBP_EXPORT int pcap_inject(pcap_t *p, const void *buf, size_t size) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_inject)(p, buf, size);
    lbp_seterr(h, "%s: lb rings are receive-only; packets cannot be sent on them", h->device);
    return PCAP_ERROR;
}

LBP_EXPORT int pcap_sendpacket(pcap_t *p, const u_char *buf, int size) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_sendpacket)(p, buf, size);
    lbp_seterr(h, "%s: lb rings are receive-only; packets cannot be sent on them", h->device);
    return PCAP_ERROR;
}

/* Dump files take their snaplen and time-stamp precision from the handle: open them on the
 * dead handle made with the activated settings. */
static pcap_t *dump_handle(pcap_t *p) {
    struct lbp *h = lbp_find(p);
    return h != NULL && h->dead != NULL ? h->dead : p;
}

static pcap_dumper_t *dump_result(pcap_t *p, pcap_t *on, pcap_dumper_t *d) {
    if (d == NULL && on != p) snprintf(pcap_geterr(p), PCAP_ERRBUF_SIZE, "%s", pcap_geterr(on));
    return d;
}

LBP_EXPORT pcap_dumper_t *pcap_dump_open(pcap_t *p, const char *fname) {
    pcap_t *on = dump_handle(p);
    return dump_result(p, on, REAL(pcap_dump_open)(on, fname));
}

LBP_EXPORT pcap_dumper_t *pcap_dump_open_append(pcap_t *p, const char *fname) {
    pcap_t *on = dump_handle(p);
    return dump_result(p, on, REAL(pcap_dump_open_append)(on, fname));
}

LBP_EXPORT pcap_dumper_t *pcap_dump_fopen(pcap_t *p, FILE *f) {
    pcap_t *on = dump_handle(p);
    return dump_result(p, on, REAL(pcap_dump_fopen)(on, f));
}

/* ---- reading ---------------------------------------------------------------------------------- */

static int not_activated(struct lbp *h) {
    lbp_seterr(h, "%s: the capture handle has not been activated", h->device);
    return PCAP_ERROR_NOT_ACTIVATED;
}

/* The end of a read call that delivered nothing: the stream's end, lb gone, or just nothing.
 * At the end the descriptor stays readable for two more calls, so that a program that polls
 * sees it (dumpcap, argus and p0f only read when poll says so); after that it is quiet and a
 * blocking read waits a read timeout first, so that programs that take the end for a timeout
 * (Suricata, softflowd) do not spin. */
static int nothing(struct lbp *h) {
    enum lbp_state s = h->ended ? (enum lbp_state)h->ended : lbp_settled(h);
    if (s != LBP_EMPTY) {
        h->ended = (int)s;
        if (h->end_calls++ < 2) {
            lbp_wake_self(h);
        } else {
            lbp_quiet(h);
            if (!h->nonblock) {
                struct timespec ts = { 0, 100 * 1000 * 1000 };
                if (h->timeout_ms > 100) ts = (struct timespec){ h->timeout_ms / 1000, (long)(h->timeout_ms % 1000) * 1000000 };
                nanosleep(&ts, NULL);
            }
        }
        if (s == LBP_GONE) {
            lbp_seterr(h, "%s: lb (pid %d) went away without ending the stream", h->device, (int)h->info->producer_pid);
            return PCAP_ERROR;
        }
        return LBP_R_EOS;
    }
    lbp_prepare_poll(h);
    return 0;
}

/* Reads up to `max` packets (max <= 0: what is there, up to a ring's worth): to the callback, or
 * with cb NULL one packet into *one. Blocks for the first one when `block`, up to timeout_ms
 * (< 0: until packets, the end, lb's departure or pcap_breakloop). `to_program`: the call returns
 * to the program, which may poll the selectable descriptor next (pcap_loop's own rounds do not). */
static int read_packets(struct lbp *h, int max, pcap_handler cb, u_char *user, const u_char **one, int block, int timeout_ms,
                        int to_program) {
    if (!h->activated) return not_activated(h);
    if (h->brk) {
        h->brk = 0;
        return PCAP_ERROR_BREAK;
    }
    lbp_disarm(h);
    if (cb == NULL) max = 1;
    else if (max <= 0) max = (int)(h->slots < INT_MAX ? h->slots : INT_MAX);
    int n = 0;
    for (;;) {
        const uint8_t *data;
        while (n < max && lbp_next(h, &data)) {
            n++;
            if (cb == NULL) {
                *one = data;
                break;
            }
            cb(user, &h->hdr, data);
            if (h->brk) {
                h->brk = 0;
                return PCAP_ERROR_BREAK;
            }
        }
        if (n > 0 || !block || h->ended) break;
        int w = lbp_wait(h, timeout_ms);
        if (w == PCAP_ERROR_BREAK) {
            h->brk = 0;
            return PCAP_ERROR_BREAK;
        }
        if (w == 0) break;
        if (lbp_settled(h) != LBP_EMPTY) break;      /* the end, or lb gone, with nothing left */
    }
    if (n == 0) return nothing(h);
    if (cb != NULL) lbp_release(h);       /* the callbacks are done with every packet */
    if (to_program) {                     /* keep select() honest */
        if (!lbp_has_packets(h)) lbp_prepare_poll(h);
        else if (!h->readable) lbp_wake_self(h);
    }
    return n;
}

static int timeout_of(struct lbp *h) { return h->timeout_ms > 0 ? h->timeout_ms : -1; }

LBP_EXPORT int pcap_dispatch(pcap_t *p, int cnt, pcap_handler cb, u_char *user) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_dispatch)(p, cnt, cb, user);
    int r = read_packets(h, cnt, cb, user, NULL, !h->nonblock, timeout_of(h), 1);
    /* The end: 0 the first time, as at a capture file's end; PCAP_ERROR_BREAK after that, which
     * programs that keep reading a live handle take for a clean stop (dumpcap, argus, p0f) */
    if (r == LBP_R_EOS) return h->end_calls > 1 ? PCAP_ERROR_BREAK : 0;
    return r;
}

LBP_EXPORT int pcap_loop(pcap_t *p, int cnt, pcap_handler cb, u_char *user) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_loop)(p, cnt, cb, user);
    int got = 0;
    for (;;) {
        int r = read_packets(h, cnt > 0 ? cnt - got : 0, cb, user, NULL, 1, -1, 0);
        if (r == LBP_R_EOS) return 0;   /* as at the end of a capture file */
        if (r < 0) return r;
        got += r;
        if (cnt > 0 && got >= cnt) return 0;
    }
}

LBP_EXPORT int pcap_next_ex(pcap_t *p, struct pcap_pkthdr **hdr, const u_char **data) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_next_ex)(p, hdr, data);
    int r = read_packets(h, 1, NULL, NULL, data, !h->nonblock, timeout_of(h), 1);
    if (r == LBP_R_EOS) return PCAP_ERROR_BREAK;    /* a capture file's end: -2 */
    if (r == 1) *hdr = &h->hdr;
    return r;
}

LBP_EXPORT const u_char *pcap_next(pcap_t *p, struct pcap_pkthdr *hdr) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_next)(p, hdr);
    const u_char *data;
    int r = read_packets(h, 1, NULL, NULL, &data, !h->nonblock, timeout_of(h), 1);
    if (r != 1) return NULL;
    *hdr = h->hdr;
    return data;
}

/* Async-signal-safe: tcpdump calls it from its SIGINT handler. */
LBP_EXPORT void pcap_breakloop(pcap_t *p) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) {
        REAL(pcap_breakloop)(p);
        return;
    }
    h->brk = 1;
    if (h->doorbell >= 0) lbp_wake_self(h);
}

/* ps_recv: packets this handle took from the ring, plus ps_drop (libpcap on Linux counts drops
 * in ps_recv too); ps_drop: packets lb dropped for this ring since the handle attached (ring
 * full, no consumer, stalled) -- for a tap also the packets lb reused before the tap read them;
 * ps_ifdrop: packets lost before lb read them (the NIC's and lb's socket drops). */
LBP_EXPORT int pcap_stats(pcap_t *p, struct pcap_stat *ps) {
    struct lbp *h = lbp_find(p);
    if (h == NULL) return REAL(pcap_stats)(p, ps);
    if (!h->activated) return not_activated(h);
    uint64_t drops = lbp_ring_drops(h) - h->drop_base + h->missed;
    ps->ps_recv = (u_int)(h->taken + drops);
    ps->ps_drop = (u_int)drops;
    ps->ps_ifdrop = (u_int)(__atomic_load_n(&h->info->ingress_drops, __ATOMIC_RELAXED) - h->ifdrop_base);
    return 0;
}
