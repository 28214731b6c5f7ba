/* lb_xdp.h: AF_XDP sockets that only send (tool ports of a forwarded group). */
#define _GNU_SOURCE
#include "lb_xdp.h"
#include "fail.h"
#include "umem.h"
#include <errno.h>
#include <linux/if_xdp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xdp/xsk.h>

struct lbx_xsk_tx {
    void *area;
    size_t area_size;
    struct xsk_umem *umem;
    struct xsk_ring_prod fill;     /* unused (nothing is received), but every UMEM has one */
    struct xsk_ring_cons comp;
    struct xsk_socket *xsk;
    struct xsk_ring_prod tx;
    uint32_t frame_size;
    /* UMEM frames not in the kernel's hands: a stack of their addresses */
    uint64_t *free;
    uint32_t nfree, frames;
    /* frames the device dropped after taking them (copy mode: sendto says EBUSY, one each) */
    uint64_t dropped;
    int zc;
};

static uint64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

uint32_t lbx_xsk_tx_flush(struct lbx_xsk_tx *x, uint32_t idle_ms)
{
    uint64_t last = now_ms();
    uint32_t held = x->frames - x->nfree;
    while (held > 0) {
        if (sendto(xsk_socket__fd(x->xsk), NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 && errno == EBUSY)
            x->dropped++;
        lbx_xsk_tx_reclaim(x);
        uint32_t now_held = x->frames - x->nfree;
        if (now_held < held) {
            held = now_held;
            last = now_ms();
        } else if (now_ms() - last > idle_ms) {
            break;
        } else {
            usleep(100);
        }
    }
    return held;
}

void lbx_xsk_tx_close(struct lbx_xsk_tx *x)
{
    if (!x)
        return;
    if (x->xsk) {
        lbx_xsk_tx_flush(x, 100);
        xsk_socket__delete(x->xsk);
    }
    if (x->umem)
        xsk_umem__delete(x->umem);
    if (x->area)
        munmap(x->area, x->area_size);
    free(x->free);
    free(x);
}

static int tx_socket(struct lbx_xsk_tx *x, const char *ifname, uint32_t queue, uint16_t mode)
{
    struct xsk_socket_config sc = {
        .rx_size = 0,
        .tx_size = x->frames,
        .libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
        .xdp_flags = 0,
        .bind_flags = (uint16_t)(XDP_USE_NEED_WAKEUP | mode),
    };
    return xsk_socket__create(&x->xsk, ifname, queue, x->umem, NULL, &x->tx, &sc);
}

int lbx_xsk_tx_open(const char *ifname, uint32_t queue, uint32_t frames, uint32_t frame_size, int zerocopy_only,
                    struct lbx_xsk_tx **out, char *err, size_t errlen)
{
    struct lbx_xsk_tx *x = calloc(1, sizeof *x);
    if (!x)
        return lbx_fail(err, errlen, ENOMEM, "out of memory");
    x->frames = frames;
    x->frame_size = frame_size;
    x->free = calloc(frames, sizeof(uint64_t));
    if (!x->free) {
        lbx_xsk_tx_close(x);
        return lbx_fail(err, errlen, ENOMEM, "out of memory");
    }
    int rc = lbx_umem_open(ifname, queue, frames, frame_size, XSK_RING_PROD__DEFAULT_NUM_DESCS, frames, &x->area,
                           &x->area_size, &x->umem, &x->fill, &x->comp, err, errlen);
    if (rc) {
        lbx_xsk_tx_close(x);
        return rc;
    }
    /* zero-copy where the driver has it, else copy mode (veth, most virtual devices) */
    rc = tx_socket(x, ifname, queue, XDP_ZEROCOPY);
    if (rc && zerocopy_only) {
        x->xsk = NULL;
        lbx_xsk_tx_close(x);
        return lbx_fail(err, errlen, rc, "%s: no zero-copy AF_XDP TX (%s)", ifname, strerror(-rc));
    }
    if (rc) {
        x->xsk = NULL;
        rc = tx_socket(x, ifname, queue, XDP_COPY);
    } else {
        x->zc = 1;
    }
    if (rc) {
        x->xsk = NULL;
        lbx_xsk_tx_close(x);
        return lbx_fail(err, errlen, rc, "%s queue %u: cannot create an AF_XDP socket to send: %s", ifname, queue, strerror(-rc));
    }
    for (uint32_t i = 0; i < frames; i++)
        x->free[i] = (uint64_t)(frames - 1 - i) * frame_size;
    x->nfree = frames;
    *out = x;
    return 0;
}

int lbx_xsk_tx_zerocopy(const struct lbx_xsk_tx *x) { return x->zc; }
uint64_t lbx_xsk_tx_dropped(const struct lbx_xsk_tx *x) { return x->dropped; }
uint32_t lbx_xsk_tx_frame_size(const struct lbx_xsk_tx *x) { return x->frame_size; }

void lbx_xsk_tx_reclaim(struct lbx_xsk_tx *x)
{
    uint32_t idx = 0;
    uint32_t n = xsk_ring_cons__peek(&x->comp, x->frames, &idx);
    for (uint32_t i = 0; i < n && x->nfree < x->frames; i++)
        x->free[x->nfree++] = *xsk_ring_cons__comp_addr(&x->comp, idx + i);
    xsk_ring_cons__release(&x->comp, n);
}

int lbx_xsk_tx_send(struct lbx_xsk_tx *x, const uint8_t *base, const uint64_t *offsets, const uint32_t *lengths,
                    uint32_t count)
{
    if (count > 0 && lengths[0] > x->frame_size)
        return -EMSGSIZE;              /* larger than a UMEM frame: the caller sends it another way */
    uint32_t fit = 0;
    while (fit < count && lengths[fit] <= x->frame_size)
        fit++;
    lbx_xsk_tx_reclaim(x);
    uint32_t n = fit < x->nfree ? fit : x->nfree;
    uint32_t idx = 0;
    n = xsk_ring_prod__reserve(&x->tx, n, &idx);
    for (uint32_t k = 0; k < n; k++) {
        uint64_t addr = x->free[--x->nfree];
        memcpy(xsk_umem__get_data(x->area, addr), base + offsets[k], lengths[k]);
        struct xdp_desc *d = xsk_ring_prod__tx_desc(&x->tx, idx + k);
        d->addr = addr;
        d->len = lengths[k];
        d->options = 0;
    }
    if (n > 0)
        xsk_ring_prod__submit(&x->tx, n);
    /* the kernel sends when woken (copy mode: within the call, at most 32 frames each); also
     * when nothing fitted, so that the frames it holds complete */
    uint32_t held = x->frames - x->nfree;   /* queued and not yet completed, these included */
    uint32_t kicks = n == 0 ? 1 : (held + 31) / 32;
    if (kicks > 64)
        kicks = 64;
    for (uint32_t i = 0; i < kicks && (n == 0 || xsk_ring_prod__needs_wakeup(&x->tx)); i++) {
        if (sendto(xsk_socket__fd(x->xsk), NULL, 0, MSG_DONTWAIT, NULL, 0) < 0) {
            int e = errno;
            /* copy mode: the device refused a frame it was given (NET_XMIT_DROP; a veth whose
             * peer's backlog is full): that frame is gone, and the kernel stopped there */
            if (e == EBUSY)
                x->dropped++;
            else if (e == EAGAIN || e == EWOULDBLOCK)
                continue;          /* copy mode: a budget of 32 frames was used up, or the device was busy */
            else if (e == ENOBUFS)
                break;
            else if (n == 0)
                return -e;
            else
                break;
        }
    }
    return (int)n;
}

int lbx_xsk_tx_stats(const struct lbx_xsk_tx *x, uint64_t *invalid, uint64_t *ring_empty)
{
    struct xdp_statistics s;
    memset(&s, 0, sizeof s);
    socklen_t len = sizeof s;
    int rc = getsockopt(xsk_socket__fd(x->xsk), SOL_XDP, XDP_STATISTICS, &s, &len);
    *invalid = s.tx_invalid_descs;
    *ring_empty = s.tx_ring_empty_descs;
    return rc ? -errno : 0;
}
