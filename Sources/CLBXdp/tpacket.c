/* lb_xdp.h: AF_PACKET with a TPACKET_V3 ring (for hosts where XDP cannot attach). */
#define _GNU_SOURCE
#include "lb_xdp.h"
#include "fail.h"
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

struct lbx_tpacket {
    int fd;
    uint8_t *map;
    size_t map_size;
    uint32_t block_size;
    uint32_t block_count;
    uint32_t block;          /* the block being read */
    int held;                /* 1 while that block is ours */
    uint32_t left;           /* packets left in it */
    struct tpacket3_hdr *next;
    struct lbx_tpacket_stats acc;
    uint64_t vlan_restored;  /* written by the receiving thread only */
    uint64_t socket_errors;  /* likewise */
};

void lbx_tpacket_close(struct lbx_tpacket *t)
{
    if (!t)
        return;
    if (t->map)
        munmap(t->map, t->map_size);
    if (t->fd >= 0)
        close(t->fd);
    free(t);
}

int lbx_tpacket_open(const char *ifname, uint32_t block_size, uint32_t block_count, uint32_t retire_ms,
                     struct lbx_tpacket **out, char *err, size_t errlen)
{
    unsigned ifindex = if_nametoindex(ifname);
    if (!ifindex)
        return lbx_fail(err, errlen, ENODEV, "no interface %s", ifname);
    struct lbx_tpacket *t = calloc(1, sizeof *t);
    if (!t)
        return lbx_fail(err, errlen, ENOMEM, "out of memory");
    t->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);   /* no protocol yet: bind after the ring exists */
    if (t->fd < 0) {
        int code = errno;
        free(t);
        return lbx_fail(err, errlen, code, "af_packet:%s: socket: %s (lb needs CAP_NET_RAW)", ifname, strerror(code));
    }
    int v = TPACKET_V3;
    if (setsockopt(t->fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v)) {
        int code = errno;
        lbx_tpacket_close(t);
        return lbx_fail(err, errlen, code, "af_packet:%s: TPACKET_V3: %s", ifname, strerror(code));
    }
    int one = 1;
    /* only what the interface receives, not what the host sends through it */
    setsockopt(t->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
    struct tpacket_req3 req = {
        .tp_block_size = block_size,
        .tp_block_nr = block_count,
        .tp_frame_size = 2048,
        .tp_frame_nr = (block_size / 2048) * block_count,
        .tp_retire_blk_tov = retire_ms,
        .tp_sizeof_priv = 0,
        .tp_feature_req_word = 0,
    };
    if (setsockopt(t->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req)) {
        int code = errno;
        lbx_tpacket_close(t);
        return lbx_fail(err, errlen, code, "af_packet:%s: PACKET_RX_RING (%u blocks of %u bytes): %s", ifname,
                    block_count, block_size, strerror(code));
    }
    t->block_size = block_size;
    t->block_count = block_count;
    t->map_size = (size_t)block_size * block_count;
    t->map = mmap(NULL, t->map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED | MAP_POPULATE, t->fd, 0);
    if (t->map == MAP_FAILED)
        t->map = mmap(NULL, t->map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, t->fd, 0);
    if (t->map == MAP_FAILED) {
        int code = errno;
        t->map = NULL;
        lbx_tpacket_close(t);
        return lbx_fail(err, errlen, code, "af_packet:%s: mmap of the ring: %s", ifname, strerror(code));
    }
    struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)ifindex };
    if (bind(t->fd, (struct sockaddr *)&ll, sizeof ll)) {
        int code = errno;
        lbx_tpacket_close(t);
        return lbx_fail(err, errlen, code, "af_packet:%s: bind: %s", ifname, strerror(code));
    }
    *out = t;
    return 0;
}

int lbx_tpacket_fd(const struct lbx_tpacket *t) { return t->fd; }

static struct tpacket_block_desc *block(struct lbx_tpacket *t, uint32_t b)
{
    return (struct tpacket_block_desc *)(t->map + (size_t)b * t->block_size);
}

uint32_t lbx_tpacket_receive(struct lbx_tpacket *t, struct lbx_pkt *out, uint64_t *ts_ns, uint32_t max, int timeout_ms)
{
    for (int round = 0; round < 2; round++) {
        if (t->held && t->left == 0) {
            __atomic_store_n(&block(t, t->block)->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
            t->held = 0;
            t->block = (t->block + 1) % t->block_count;
        }
        if (!t->held) {
            struct tpacket_block_desc *bd = block(t, t->block);
            if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) {
                if (round > 0)
                    return 0;
                struct pollfd pfd = { .fd = t->fd, .events = POLLIN | POLLERR };
                if (poll(&pfd, 1, timeout_ms) > 0 && (pfd.revents & POLLERR)) {
                    /* the interface went down (ENETDOWN) or away: read the error, which clears
                     * it (else poll() would return at once, forever), count it, keep waiting:
                     * a packet socket resumes when the interface comes back up */
                    int e = 0;
                    socklen_t len = sizeof e;
                    getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &e, &len);
                    __atomic_store_n(&t->socket_errors, t->socket_errors + 1, __ATOMIC_RELAXED);
                    return 0;
                }
                if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER))
                    return 0;
            }
            t->held = 1;
            t->left = bd->hdr.bh1.num_pkts;
            t->next = (struct tpacket3_hdr *)((uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt);
            if (t->left == 0)
                continue;
        }
        uint32_t n = 0;
        uint8_t *blk = (uint8_t *)block(t, t->block);
        while (t->left > 0 && n < max) {
            struct tpacket3_hdr *h = t->next;
            /* the kernel wrote these offsets; still, never follow one out of the block */
            if ((uint8_t *)h < blk || (uint8_t *)h + sizeof *h > blk + t->block_size ||
                (uint8_t *)h + h->tp_mac + h->tp_snaplen > blk + t->block_size) {
                t->left = 0;
                break;
            }
            uint8_t *data = (uint8_t *)h + h->tp_mac;
            uint32_t len = h->tp_snaplen, wire = h->tp_len;
            /* The kernel took the outer VLAN tag out of the frame (VLAN offload): put it back
             * where it was, so workers see and lb hashes the frame as it was on the wire. The
             * 4 bytes before the frame hold the sockaddr_ll, which lb does not read. */
            if ((h->tp_status & TP_STATUS_VLAN_VALID) && len >= 12 &&
                h->tp_mac >= TPACKET_ALIGN(sizeof(struct tpacket3_hdr)) + sizeof(struct sockaddr_ll) + 4) {
                uint16_t tpid = (h->tp_status & TP_STATUS_VLAN_TPID_VALID) ? h->hv1.tp_vlan_tpid : ETH_P_8021Q;
                memmove(data - 4, data, 12);
                data -= 4;
                data[12] = (uint8_t)(tpid >> 8);
                data[13] = (uint8_t)tpid;
                data[14] = (uint8_t)(h->hv1.tp_vlan_tci >> 8);
                data[15] = (uint8_t)h->hv1.tp_vlan_tci;
                len += 4;
                wire += 4;
                __atomic_store_n(&t->vlan_restored, t->vlan_restored + 1, __ATOMIC_RELAXED);
            }
            out[n].data = data;
            out[n].len = len;
            out[n].wire_len = wire;
            ts_ns[n] = (uint64_t)h->tp_sec * 1000000000ull + h->tp_nsec;
            n++;
            t->left--;
            t->next = (struct tpacket3_hdr *)((uint8_t *)h + h->tp_next_offset);
        }
        if (n > 0)
            return n;
    }
    return 0;
}

int lbx_tpacket_stats(struct lbx_tpacket *t, struct lbx_tpacket_stats *out)
{
    struct tpacket_stats_v3 s;
    memset(&s, 0, sizeof s);
    socklen_t len = sizeof s;
    int rc = getsockopt(t->fd, SOL_PACKET, PACKET_STATISTICS, &s, &len);
    if (rc == 0) {
        t->acc.packets += s.tp_packets;
        t->acc.drops += s.tp_drops;
        t->acc.freeze_q += s.tp_freeze_q_cnt;
    }
    *out = t->acc;
    out->vlan_restored = __atomic_load_n(&t->vlan_restored, __ATOMIC_RELAXED);
    out->socket_errors = __atomic_load_n(&t->socket_errors, __ATOMIC_RELAXED);
    return rc ? -errno : 0;
}
