/*
 * lb_xdp.h -- lb's edge to libbpf and libxdp: loading and attaching lb's XDP program, AF_XDP
 * sockets (UMEM, fill ring, RX ring, need_wakeup), and TPACKET_V3 rings for AF_PACKET.
 * Every symbol carries the lbx_ prefix. Functions that can fail return 0 or a negative errno
 * and write a human-readable reason into `err` (errlen bytes).
 *
 * include/lb_xdp_shared.h is a symbolic link to bpf/lb_xdp_shared.h, which the XDP program includes.
 */
#ifndef LB_XDP_H
#define LB_XDP_H

#include <stdint.h>
#include <stddef.h>
#include "lb_xdp_shared.h"

/* ---- the XDP program ---- */

struct lbx_prog;

enum { LBX_MODE_NATIVE = 1, LBX_MODE_GENERIC = 2 };

/* Opens and loads the object file (the program and its maps). */
int lbx_prog_open(const char *path, struct lbx_prog **out, char *err, size_t errlen);
/* Writes the divert configuration (before or after attaching). */
int lbx_prog_configure(struct lbx_prog *p, const struct lb_xdp_config *cfg, char *err, size_t errlen);
/* Attaches with a bpf_link in `mode`. A netlink-attached program named lb_xdp (left by a killed
 * lb of an older kind, or by hand) is replaced; a foreign one is refused, named in `err`;
 * -EBUSY when a link already holds the interface (another lb). */
int lbx_prog_attach(struct lbx_prog *p, int ifindex, int mode, char *err, size_t errlen);
/* Puts an AF_XDP socket into the XSKMAP slot of its RX queue. */
int lbx_prog_set_socket(struct lbx_prog *p, uint32_t queue, int fd, char *err, size_t errlen);
/* Sums the program's per-CPU counters into out[LB_XDP_NSTATS] (no syscall: mapped memory). */
void lbx_prog_counters(const struct lbx_prog *p, uint64_t *out);
/* Shunted flows in "lb_shunts" (the program looks them up when lb_xdp_config.shunting is set):
 * put one in or change its directions (its counts stay), take one out (-ENOENT if absent),
 * read its counts. */
int lbx_prog_shunt_set(struct lbx_prog *p, const struct lb_shunt_key *k, unsigned char directions, char *err, size_t errlen);
int lbx_prog_shunt_del(struct lbx_prog *p, const struct lb_shunt_key *k);
int lbx_prog_shunt_get(struct lbx_prog *p, const struct lb_shunt_key *k, struct lb_shunt_value *v);
/* Runs the program once on a frame (BPF_PROG_TEST_RUN, for tests); *action gets XDP_*. */
int lbx_prog_test_run(struct lbx_prog *p, const void *frame, uint32_t len, uint32_t *action);
/* The same `repeat` times in the kernel (for benchmarks); *ns gets the mean time of one run. */
int lbx_prog_test_time(struct lbx_prog *p, const void *frame, uint32_t len, uint32_t repeat, uint32_t *action, uint32_t *ns);
/* Detaches (closes the link) and frees everything. */
void lbx_prog_close(struct lbx_prog *p);

/* The id and name of the XDP program attached to ifindex (0 if none); for tests and messages. */
uint32_t lbx_attached_prog(int ifindex, char *name, size_t namelen);

/* The number of RX queues of an interface (ETHTOOL_GCHANNELS; 1 if unknown), or -errno. */
int lbx_rx_queue_count(const char *ifname);
/* Whether the NIC's RSS hash for UDP over IPv4 (ipv6: over IPv6) includes the ports
 * (ETHTOOL_GRXFH): 1 or 0, or -errno (EOPNOTSUPP: the driver does not say, as veth). */
int lbx_udp_rss_uses_ports(const char *ifname, int ipv6);

/* ---- AF_XDP sockets ---- */

struct lbx_xsk;

struct lbx_pkt {
    const uint8_t *data;
    uint32_t len;        /* bytes at data */
    uint32_t wire_len;   /* the frame's length (larger than len only if cut short) */
};

struct lbx_xsk_stats {
    uint64_t rx_dropped;
    uint64_t rx_invalid_descs;
    uint64_t rx_ring_full;
    uint64_t rx_fill_ring_empty_descs;
    uint64_t multibuffer;   /* frames that came in several buffers (delivered whole) */
    uint64_t truncated;     /* multi-buffer frames longer than lb's 64 KiB scratch: cut short */
};

/* Creates a UMEM of `frames` frames of `frame_size` bytes and a socket on ifname/queue. copy: force
 * copy mode (with a generic-mode program); else zero-copy when the driver has it. sg: bind with
 * XDP_USE_SG (multi-buffer). */
int lbx_xsk_open(const char *ifname, uint32_t queue, uint32_t frames, uint32_t frame_size, int copy, int sg,
                 struct lbx_xsk **out, char *err, size_t errlen);
int lbx_xsk_fd(const struct lbx_xsk *x);
/* 1 when the kernel bound the socket in zero-copy mode. */
int lbx_xsk_zerocopy(const struct lbx_xsk *x);
/* Returns the previous batch's frames to the fill ring, then takes up to max packets from the RX
 * ring. When none are there, waits in poll() up to timeout_ms (and wakes the kernel when it
 * asks for it, need_wakeup); timeout_ms 0 returns at once, without poll(). Packets stay valid
 * until the next call. */
uint32_t lbx_xsk_receive(struct lbx_xsk *x, struct lbx_pkt *out, uint32_t max, int timeout_ms);
/* Whether the RX ring still holds packets after lbx_xsk_receive returned: a batch can come back
 * short with more waiting (a multi-buffer frame always starts a batch of its own). */
int lbx_xsk_rx_waiting(struct lbx_xsk *x);
/* XDP_STATISTICS (getsockopt on the open socket: works without privileges) plus lb's counts. */
int lbx_xsk_stats(const struct lbx_xsk *x, struct lbx_xsk_stats *out);
void lbx_xsk_close(struct lbx_xsk *x);

/* ---- AF_XDP sockets that only send (tool ports) ---- */

struct lbx_xsk_tx;

/* A UMEM of `frames` frames of `frame_size` bytes and a socket with only a TX ring on
 * ifname/queue: zero-copy where the driver has it, else copy mode (unless zerocopy_only: then
 * an error). No XDP program is needed. */
int lbx_xsk_tx_open(const char *ifname, uint32_t queue, uint32_t frames, uint32_t frame_size, int zerocopy_only,
                    struct lbx_xsk_tx **out, char *err, size_t errlen);
int lbx_xsk_tx_zerocopy(const struct lbx_xsk_tx *x);
/* Frames the device dropped after the socket handed them over (copy mode), so far. */
uint64_t lbx_xsk_tx_dropped(const struct lbx_xsk_tx *x);
uint32_t lbx_xsk_tx_frame_size(const struct lbx_xsk_tx *x);
/* Takes back the frames the kernel has sent (the completion ring). */
void lbx_xsk_tx_reclaim(struct lbx_xsk_tx *x);
/* Copies frames 0..<count (at base + offsets[i], lengths[i] bytes) into the UMEM and queues them
 * on the TX ring, in order, and wakes the kernel; returns how many were queued: 0 when the
 * ring or the UMEM is full for now, -EMSGSIZE when frame 0 is larger than a UMEM frame, -errno
 * when the kernel refuses to send. */
int lbx_xsk_tx_send(struct lbx_xsk_tx *x, const uint8_t *base, const uint64_t *offsets, const uint32_t *lengths,
                    uint32_t count);
/* XDP_STATISTICS: descriptors the kernel found invalid, and times it found the TX ring empty. */
int lbx_xsk_tx_stats(const struct lbx_xsk_tx *x, uint64_t *invalid, uint64_t *ring_empty);
/* Wakes the kernel until every queued frame has left, giving up after idle_ms without
 * progress; returns the frames still held (not sent). */
uint32_t lbx_xsk_tx_flush(struct lbx_xsk_tx *x, uint32_t idle_ms);
/* Lets what is queued leave (lbx_xsk_tx_flush, 100 ms), closes the socket, frees the UMEM. */
void lbx_xsk_tx_close(struct lbx_xsk_tx *x);

/* ---- AF_PACKET TPACKET_V3 ---- */

struct lbx_tpacket;

struct lbx_tpacket_stats {
    uint64_t packets;    /* tp_packets, accumulated */
    uint64_t drops;      /* tp_drops, accumulated */
    uint64_t freeze_q;   /* tp_freeze_q_cnt, accumulated */
    uint64_t vlan_restored; /* frames whose VLAN tag the kernel had taken out and lb put back */
    uint64_t socket_errors; /* errors the socket reported (ENETDOWN when the interface went down) */
};

/* A TPACKET_V3 ring of block_count blocks of block_size bytes on ifname (all protocols, incoming
 * packets only), blocks retired after retire_ms. */
int lbx_tpacket_open(const char *ifname, uint32_t block_size, uint32_t block_count, uint32_t retire_ms,
                     struct lbx_tpacket **out, char *err, size_t errlen);
int lbx_tpacket_fd(const struct lbx_tpacket *t);
/* Like lbx_xsk_receive; ts_ns gets each packet's kernel timestamp. */
uint32_t lbx_tpacket_receive(struct lbx_tpacket *t, struct lbx_pkt *out, uint64_t *ts_ns, uint32_t max, int timeout_ms);
/* PACKET_STATISTICS (reading resets the kernel's counts: this accumulates; one caller thread). */
int lbx_tpacket_stats(struct lbx_tpacket *t, struct lbx_tpacket_stats *out);
void lbx_tpacket_close(struct lbx_tpacket *t);

/* ---- privileges ---- */

/* Becomes uid/gid (setgroups, setresgid, setresuid: every thread, every capability gone). */
int lbx_drop_to_user(uint32_t uid, uint32_t gid, char *err, size_t errlen);

#endif
