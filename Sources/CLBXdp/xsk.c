/* lb_xdp.h: AF_XDP sockets (libxdp's xsk API; its ring helpers are inline and compile here). */
#define _GNU_SOURCE
#include "lb_xdp.h"
#include "fail.h"
#include "umem.h"
#include <errno.h>
#include <linux/if_xdp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xdp/xsk.h>

/* Newer than the installed uapi header (Linux 6.6). */
#ifndef XDP_USE_SG
#define XDP_USE_SG (1 << 4)
#endif
#ifndef XDP_PKT_CONTD
#define XDP_PKT_CONTD (1 << 0)
#endif

#define LBX_SCRATCH (64 * 1024)

struct lbx_xsk {
    void *area;
    size_t area_size;
    struct xsk_umem *umem;
    struct xsk_ring_prod fill;
    struct xsk_ring_cons comp;
    struct xsk_socket *xsk;
    struct xsk_ring_cons rx;
    uint32_t rx_size;
    /* frames of the previous batch (and any the fill ring had no room for yet), returned to
     * the fill ring on the next receive */
    uint64_t *pending;
    uint32_t npending;
    /* RX descriptors of the previous batch, released on the next receive */
    uint32_t rx_held;
    uint8_t *scratch;
    uint64_t multibuffer;
    uint64_t truncated;
    int zc;
};

void lbx_xsk_close(struct lbx_xsk *x)
{
    if (!x)
        return;
    if (x->xsk)
        xsk_socket__delete(x->xsk);
    if (x->umem)
        xsk_umem__delete(x->umem);
    if (x->area)
        munmap(x->area, x->area_size);
    free(x->pending);
    free(x->scratch);
    free(x);
}

int lbx_xsk_open(const char *ifname, uint32_t queue, uint32_t frames, uint32_t frame_size, int copy, int sg,
                 struct lbx_xsk **out, char *err, size_t errlen)
{
    struct lbx_xsk *x = calloc(1, sizeof *x);
    if (!x)
        return lbx_fail(err, errlen, ENOMEM, "out of memory");
    x->rx_size = frames / 2;
    x->pending = calloc(frames, sizeof(uint64_t));
    x->scratch = malloc(LBX_SCRATCH);
    if (!x->pending || !x->scratch) {
        lbx_xsk_close(x);
        return lbx_fail(err, errlen, ENOMEM, "out of memory");
    }
    int rc = lbx_umem_open(ifname, queue, frames, frame_size, frames, XSK_RING_CONS__DEFAULT_NUM_DESCS, &x->area,
                           &x->area_size, &x->umem, &x->fill, &x->comp, err, errlen);
    if (rc) {
        lbx_xsk_close(x);
        return rc;
    }
    struct xsk_socket_config sc = {
        .rx_size = x->rx_size,
        .tx_size = 0,
        .libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
        .xdp_flags = 0,
        .bind_flags = (uint16_t)(XDP_USE_NEED_WAKEUP | (copy ? XDP_COPY : 0) | (sg ? XDP_USE_SG : 0)),
    };
    rc = xsk_socket__create(&x->xsk, ifname, queue, x->umem, &x->rx, NULL, &sc);
    if (rc && sg) {
        /* a kernel or driver without multi-buffer AF_XDP: frames fit one buffer or are dropped
         * by the kernel (counted in rx_dropped) */
        sc.bind_flags &= (uint16_t)~XDP_USE_SG;
        rc = xsk_socket__create(&x->xsk, ifname, queue, x->umem, &x->rx, NULL, &sc);
    }
    if (rc) {
        x->xsk = NULL;
        lbx_xsk_close(x);
        return lbx_fail(err, errlen, rc, "%s queue %u: cannot create the AF_XDP socket: %s", ifname, queue, strerror(-rc));
    }
    struct xdp_options opts;
    socklen_t len = sizeof opts;
    if (getsockopt(xsk_socket__fd(x->xsk), SOL_XDP, XDP_OPTIONS, &opts, &len) == 0)
        x->zc = (opts.flags & XDP_OPTIONS_ZEROCOPY) != 0;
    /* every frame starts in the fill ring */
    uint32_t idx = 0;
    if (xsk_ring_prod__reserve(&x->fill, frames, &idx) != frames) {
        lbx_xsk_close(x);
        return lbx_fail(err, errlen, EIO, "%s queue %u: cannot fill the fill ring", ifname, queue);
    }
    for (uint32_t i = 0; i < frames; i++)
        *xsk_ring_prod__fill_addr(&x->fill, idx + i) = (uint64_t)i * frame_size;
    xsk_ring_prod__submit(&x->fill, frames);
    *out = x;
    return 0;
}

int lbx_xsk_fd(const struct lbx_xsk *x) { return xsk_socket__fd(x->xsk); }
int lbx_xsk_zerocopy(const struct lbx_xsk *x) { return x->zc; }

static void recycle(struct lbx_xsk *x)
{
    if (x->rx_held) {
        xsk_ring_cons__release(&x->rx, x->rx_held);
        x->rx_held = 0;
    }
    if (!x->npending)
        return;
    uint32_t idx = 0;
    /* The fill ring is as large as the UMEM, but the kernel publishes how far it has read the
     * fill ring lazily: frames it already took (and handed to us through the RX ring) may still
     * count as occupying it. What does not fit now stays pending for the next call; it is
     * never dropped, or the UMEM would leak frames until the fill ring ran dry. */
    uint32_t n = xsk_ring_prod__reserve(&x->fill, x->npending, &idx);
    for (uint32_t i = 0; i < n; i++)
        *xsk_ring_prod__fill_addr(&x->fill, idx + i) = x->pending[i];
    xsk_ring_prod__submit(&x->fill, n);
    if (n < x->npending)
        memmove(x->pending, x->pending + n, (size_t)(x->npending - n) * sizeof x->pending[0]);
    x->npending -= n;
    /* a zero-copy driver that ran out of fill-ring frames sleeps until told (need_wakeup) */
    if (xsk_ring_prod__needs_wakeup(&x->fill))
        recvfrom(xsk_socket__fd(x->xsk), NULL, 0, MSG_DONTWAIT, NULL, NULL);
}

uint32_t lbx_xsk_receive(struct lbx_xsk *x, struct lbx_pkt *out, uint32_t max, int timeout_ms)
{
    recycle(x);
    uint32_t idx = 0;
    uint32_t avail = xsk_ring_cons__peek(&x->rx, x->rx_size, &idx);
    if (avail == 0) {
        if (timeout_ms == 0)
            return 0;
        struct pollfd pfd = { .fd = xsk_socket__fd(x->xsk), .events = POLLIN };
        /* poll() also wakes the kernel up when the fill ring asks for it (need_wakeup) */
        poll(&pfd, 1, timeout_ms);
        avail = xsk_ring_cons__peek(&x->rx, x->rx_size, &idx);
        if (avail == 0)
            return 0;
    }
    uint32_t used = 0, n = 0;
    while (used < avail && n < max) {
        const struct xdp_desc *d = xsk_ring_cons__rx_desc(&x->rx, idx + used);
        if (!(d->options & XDP_PKT_CONTD)) {
            x->pending[x->npending++] = xsk_umem__extract_addr(d->addr);
            out[n].data = xsk_umem__get_data(x->area, xsk_umem__add_offset_to_addr(d->addr));
            out[n].len = d->len;
            out[n].wire_len = d->len;
            n++;
            used++;
            continue;
        }
        /* a multi-buffer frame: its buffers are published together; find the last one */
        uint32_t end = used;
        while (end < avail && (xsk_ring_cons__rx_desc(&x->rx, idx + end)->options & XDP_PKT_CONTD))
            end++;
        if (end == avail)
            break;           /* cannot happen (all or nothing), but never read past what is there */
        if (n > 0)
            break;           /* it goes through the scratch buffer: first in the next batch */
        uint32_t total = 0, wire = 0;
        for (uint32_t k = used; k <= end; k++) {
            const struct xdp_desc *f = xsk_ring_cons__rx_desc(&x->rx, idx + k);
            x->pending[x->npending++] = xsk_umem__extract_addr(f->addr);
            uint32_t take = f->len;
            if (total + take > LBX_SCRATCH)
                take = LBX_SCRATCH - total;
            memcpy(x->scratch + total, xsk_umem__get_data(x->area, xsk_umem__add_offset_to_addr(f->addr)), take);
            total += take;
            wire += f->len;
        }
        __atomic_store_n(&x->multibuffer, x->multibuffer + 1, __ATOMIC_RELAXED);
        if (total < wire)
            __atomic_store_n(&x->truncated, x->truncated + 1, __ATOMIC_RELAXED);
        out[0].data = x->scratch;
        out[0].len = total;
        out[0].wire_len = wire;
        n = 1;
        used = end + 1;
        break;
    }
    /* give back what was looked at but not taken; release the rest on the next call */
    xsk_ring_cons__cancel(&x->rx, avail - used);
    x->rx_held = used;
    return n;
}

int lbx_xsk_rx_waiting(struct lbx_xsk *x) { return xsk_cons_nb_avail(&x->rx, 1) > 0; }

int lbx_xsk_stats(const struct lbx_xsk *x, struct lbx_xsk_stats *out)
{
    struct xdp_statistics s;
    memset(&s, 0, sizeof s);
    socklen_t len = sizeof s;
    int rc = getsockopt(xsk_socket__fd(x->xsk), SOL_XDP, XDP_STATISTICS, &s, &len);
    out->rx_dropped = s.rx_dropped;
    out->rx_invalid_descs = s.rx_invalid_descs;
    out->rx_ring_full = s.rx_ring_full;
    out->rx_fill_ring_empty_descs = s.rx_fill_ring_empty_descs;
    out->multibuffer = __atomic_load_n(&x->multibuffer, __ATOMIC_RELAXED);
    out->truncated = __atomic_load_n(&x->truncated, __ATOMIC_RELAXED);
    return rc ? -errno : 0;
}
