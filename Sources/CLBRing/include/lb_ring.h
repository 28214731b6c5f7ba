/*
 * lb_ring.h -- the shared-memory ABI between lb and the analyzers that consume its rings.
 *
 * This header is the contract. lb (Swift) reads its offsets from here, and a C or C++ analyzer
 * can attach with nothing but this file and libc. docs/ring-protocol.md explains the protocol;
 * this file fixes the bytes. Every offset is checked with _Static_assert below.
 *
 * Summary
 *   - A ring is named NAME:K. lb listens on a unix SOCK_SEQPACKET socket <run-dir>/NAME.sock.
 *   - A consumer connects, sends struct lb_attach_request, and receives struct lb_attach_reply
 *     with two file descriptors (SCM_RIGHTS): the DATA region and the CONTROL region of ring K.
 *   - DATA (sealed memfd, read-only for consumers): struct lb_ring_info, then one or more lanes.
 *     Each lane is a single-producer single-consumer queue: a header page with the producer's
 *     head, an array of 64-byte descriptors, and a byte area that holds the packets.
 *   - CONTROL (sealed memfd, read-write for the consumer): the consumer's tail for each lane and
 *     the consumer's reports. lb never trusts it: a tail out of range is treated as "ring full".
 *   - The connection stays open while the consumer is attached; closing it (or dying) detaches.
 *
 * All integers are native byte order (the producer and consumers share one host) and naturally
 * aligned. Indices (head, tail) are free-running 64-bit counters; slot = index & (desc_count-1).
 */
#ifndef LB_RING_H
#define LB_RING_H

#include <stdint.h>
#include <stddef.h>

#if defined(__cplusplus) && !defined(_Static_assert)
#define _Static_assert static_assert  /* C++ spells it static_assert (lb_worker.h users: Zeek, Suricata plugins) */
#endif

#define LB_RING_MAGIC        0x31474E4952424CULL /* "LBRING1" */
#define LB_RING_VERSION      1u
#define LB_CACHELINE         64u
#define LB_PAGE              4096u
#define LB_MAX_LANES         64u
#define LB_GROUP_NAME_MAX    32u   /* including the terminating NUL */
#define LB_LINKTYPE_ETHERNET 1u

/* lb_ring_info.state */
#define LB_STATE_RUNNING     1u    /* lb is producing */
#define LB_STATE_EOS         2u    /* end of stream: no more packets after the current heads */
#define LB_STATE_CLOSED      3u    /* lb exited; the region is no longer updated */

/* lb_desc.flags */
#define LB_F_DECAPSULATED    0x0001u /* outer tunnel headers were removed */
#define LB_F_SYNTH_ETHERNET  0x0002u /* the Ethernet header was synthesized (inner packet had none) */
#define LB_F_TRUNCATED       0x0004u /* caplen < wirelen because the slot was too small */
#define LB_F_PARSE_ERROR     0x0008u /* the packet did not parse fully; hash covers what could be read */
#define LB_F_FRAGMENT        0x0010u /* an IP fragment (hash is that of its datagram's flow) */
#define LB_F_REASSEMBLED     0x0020u /* built from outer IP fragments before decapsulation */
#define LB_F_TUNNEL_INFO     0x0040u /* a struct lb_tunnel_info precedes the packet bytes */
#define LB_F_VLAN            0x0080u /* lb_desc.vlan holds the outermost VLAN id */
#define LB_F_KEPT_ENCAP      0x0100u /* --decap keep: the original frame, hashed on the inner flow */
#define LB_F_NON_IP          0x0200u /* no IP layer was found (hash on link-layer addresses) */
#define LB_F_SHUNT_END       0x0400u /* not a packet: the record holds a struct lb_shunt_end, the
                                      * final counts of a shunt that ended (only to consumers that
                                      * attached with LB_ATTACH_SHUNT_REPORTS; docs/shunting.md) */
#define LB_F_SLICED          0x0800u /* caplen < wirelen because the group keeps only the first
                                      * bytes of each packet (--slice; docs/policy.md) */
#define LB_F_TENANT_TAG      0x1000u /* lb added the outermost 802.1Q tag: its VLAN id (lb_desc.vlan)
                                      * names the tunnel or outer VLAN the packet came from
                                      * (--tenant-tag; docs/policy.md) */

/* lb_desc.encap and lb_tunnel_info.encap: the outermost tunnel that was removed */
#define LB_ENCAP_NONE        0u
#define LB_ENCAP_VXLAN       1u
#define LB_ENCAP_GENEVE      2u
#define LB_ENCAP_GRE         3u
#define LB_ENCAP_ERSPAN      4u
#define LB_ENCAP_IPIP        5u
#define LB_ENCAP_GTPU        6u
#define LB_ENCAP_TEREDO      7u
#define LB_ENCAP_AYIYA       8u
#define LB_ENCAP_PPTP        9u
#define LB_ENCAP_ARUBA       10u
#define LB_ENCAP_GRE_UDP     11u

/* ---- DATA region --------------------------------------------------------------------------- */

/* Offset 0 of the DATA region. Written once by lb before the region is handed out. */
struct lb_ring_info {
    /* cache line 0: fixed */
    uint64_t magic;             /* LB_RING_MAGIC */
    uint32_t version;           /* LB_RING_VERSION */
    uint32_t info_size;         /* sizeof(struct lb_ring_info) */
    uint64_t region_size;       /* bytes of the DATA region */
    uint64_t instance_id;       /* random; new for every lb start */
    uint32_t lane_count;        /* 1 .. LB_MAX_LANES */
    uint32_t link_type;         /* LB_LINKTYPE_ETHERNET */
    uint32_t desc_count;        /* descriptors per lane, a power of two */
    uint32_t desc_size;         /* sizeof(struct lb_desc) */
    uint32_t max_caplen;        /* longest packet stored; longer ones are truncated (LB_F_TRUNCATED) */
    uint32_t ring_index;        /* K of NAME:K */
    uint32_t ring_count;        /* rings in the group */
    int32_t  producer_pid;      /* lb's pid */
    /* cache line 1: fixed */
    uint64_t lane_offset;       /* offset of lane 0 */
    uint64_t lane_stride;       /* lane i starts at lane_offset + i * lane_stride */
    uint64_t desc_offset;       /* offset of the descriptor array within a lane */
    uint64_t data_offset;       /* offset of the packet byte area within a lane */
    uint64_t data_size;         /* bytes of the packet byte area, a power of two */
    uint64_t reserved1[3];
    /* cache line 2: fixed */
    char     group[LB_GROUP_NAME_MAX]; /* NAME of NAME:K, NUL-terminated */
    uint64_t reserved2[4];
    /* cache line 3: changes while running */
    uint32_t state;             /* LB_STATE_* (release-stored by lb) */
    uint32_t reserved0;
    uint64_t heartbeat_ns;      /* CLOCK_REALTIME of lb's last heartbeat (about once a second) */
    uint64_t ingress_drops;     /* packets lost before lb read them (the interface's hardware drops,
                                 * the AF_XDP/AF_PACKET/UDP socket's drops), since lb started;
                                 * refreshed with the heartbeat. liblbpcap's ps_ifdrop. */
    uint64_t reserved[5];
};

/* Start of each lane: one page. Only lb writes it. */
struct lb_lane_header {
    /* cache line 0: what consumers poll */
    /* Descriptors published so far. lb stores it with release order after writing the
     * descriptors and bytes; consumers load it with acquire order. Its low 32 bits (first on a
     * little-endian host) are the futex word consumers sleep on. */
    uint64_t head;
    /* lb may overwrite the descriptors and bytes of every packet below this index (it is the
     * consumer's tail as lb last validated it; lb stores it with release order before it
     * reuses any space). A tap that copies packet i is safe if, after the copy and an acquire
     * fence, reclaim <= i still holds. */
    uint64_t reclaim;
    uint64_t reserved[6];
    /* cache line 1: counters, stored (relaxed) by lb as they change */
    uint64_t dropped;           /* packets of this lane lb dropped for this ring: ring full, no
                                 * consumer, stalled consumer (packets_dropped, summed over lanes) */
    uint64_t reserved_stats[7];
};

/* A descriptor: one packet. */
struct lb_desc {
    uint64_t ts_ns;             /* capture time, ns since the Unix epoch */
    uint64_t data_off;          /* offset of the packet's first byte in the lane's byte area */
    uint32_t caplen;            /* bytes stored at data_off */
    uint32_t wirelen;           /* length of the delivered packet on the wire */
    uint64_t flow_hash;         /* symmetric hash of the innermost flow (same for both directions) */
    uint32_t flags;             /* LB_F_* */
    uint16_t l3_off;            /* offset of the (inner) IP header in the packet; 0xffff if none */
    uint8_t  encap;             /* LB_ENCAP_* of the outermost tunnel removed */
    uint8_t  depth;             /* number of tunnels removed */
    uint32_t vni;               /* innermost VXLAN/GENEVE VNI, GRE key, or GTP TEID; 0 if none */
    uint16_t vlan;              /* outermost VLAN id when LB_F_VLAN */
    uint16_t tunnel_len;        /* bytes of tunnel info just before data_off (0 or 64) */
    uint32_t input;             /* ingress index (RX queue, socket, file) */
    uint32_t reserved[3];
};

/* When LB_F_TUNNEL_INFO is set: the outer flow of the outermost tunnel, in the 64 bytes that
 * end at data_off (data_off - 64). Addresses in network byte order, ports in host order. */
struct lb_tunnel_info {
    uint8_t  family;            /* 4 or 6 */
    uint8_t  proto;             /* outer IP protocol (17 UDP, 47 GRE, 4/41 IP-in-IP) */
    uint8_t  encap;             /* LB_ENCAP_* */
    uint8_t  reserved0;
    uint16_t sport;             /* outer UDP ports, 0 if none */
    uint16_t dport;
    uint8_t  src[16];           /* IPv4 in the first 4 bytes */
    uint8_t  dst[16];
    uint32_t vni;
    uint32_t reserved[5];
};

/* The record of an LB_F_SHUNT_END descriptor (caplen = its size): a shunted flow's entry
 * ended in one of lb's data-path threads (each reports its own counts: add them up). Sent to the
 * ring the flow hashes to, in packet order. a is the lower endpoint (address, then port). */
struct lb_shunt_end {
    uint8_t  a[16];             /* IPv4 mapped (::ffff:a.b.c.d) */
    uint8_t  b[16];
    uint16_t a_port;            /* 0 for protocols hashed without ports */
    uint16_t b_port;
    uint8_t  proto;
    uint8_t  directions;        /* 1: a -> b, 2: b -> a, 3: both */
    uint8_t  reason;            /* 1 idle timeout, 2 hard timeout, 3 removed, 4 end of input */
    uint8_t  reserved0;
    uint32_t extra;             /* the VLAN/VNI value the hash mixed in (0 if none) */
    uint32_t reserved1;
    uint64_t packets_ab;        /* packets and IP bytes (headers included) stopped, per direction */
    uint64_t ip_bytes_ab;
    uint64_t packets_ba;
    uint64_t ip_bytes_ba;
    uint64_t added_ns;          /* packet time the entry began, and of its last stopped packet */
    uint64_t last_ns;
};

/* ---- CONTROL region ------------------------------------------------------------------------ */

/* The consumer's report (offset 0 of the CONTROL region). Written by the consumer only. */
struct lb_consumer_report {
    int32_t  pid;               /* the consumer's pid */
    uint32_t flags;             /* reserved */
    uint64_t heartbeat_ns;      /* CLOCK_REALTIME of the consumer's last report */
    uint64_t packets_processed; /* packets the consumer has finished with */
    uint64_t loss_gaps;         /* the consumer's own loss estimate (Zeek-style gaps) */
    uint64_t loss_acks;         /*   ... out of this many acks */
    uint64_t reserved[3];
};

/* One per lane, at CONTROL offset LB_CONTROL_LANES + lane * sizeof(struct lb_lane_control). */
struct lb_lane_control {
    /* Descriptors the consumer has released. The consumer stores it with release order; lb
     * loads it with acquire order. Low 32 bits: the futex word lb sleeps on when the ring is
     * full and it replays a file. */
    uint64_t tail;
    uint32_t consumer_waiting;  /* LB_WAIT_* bits: how the consumer wants lb to wake it; 0: not at all */
    uint32_t reserved0;
    uint64_t reserved1[6];
    /* separate cache line: written by lb */
    uint32_t producer_waiting;  /* lb sets 1 before sleeping on tail; the consumer wakes it */
    uint32_t reserved2;
    uint64_t reserved3[7];
};

/* lb_lane_control.consumer_waiting: after publishing, lb wakes a consumer that set ... */
#define LB_WAIT_FUTEX        1u    /* ... FUTEX_WAKE on the lane's head */
#define LB_WAIT_DOORBELL     2u    /* ... a write of 1 to the ring's doorbell (an eventfd, see
                                    * LB_ATTACH_DOORBELL): what a consumer that must offer a
                                    * pollable descriptor (liblbpcap) uses */

#define LB_CONTROL_LANES     256u
/* Bytes of the CONTROL region for a ring of `lanes` lanes. */
static inline uint64_t lb_control_size(uint32_t lanes) {
    return (((uint64_t)LB_CONTROL_LANES + (uint64_t)lanes * 128u) + LB_PAGE - 1) / LB_PAGE * LB_PAGE;
}

/* ---- control socket messages --------------------------------------------------------------- */

#define LB_ATTACH_MAGIC      0x4C424154u /* "LBAT" */
#define LB_MODE_CONSUMER     1u          /* exclusive: one consumer per ring */
#define LB_MODE_TAP          2u          /* read-only observer: gets only the DATA region */
#define LB_MODE_STATS        3u          /* lb sends its status snapshot (JSON) after the reply, then closes */
#define LB_MODE_SHUNT        4u          /* a shunt request: the request is followed, in the same message,
                                          * by one line of text (docs/shunting.md); lb sends the reply,
                                          * then its answer as lines of text, then closes */

struct lb_attach_request {
    uint32_t magic;             /* LB_ATTACH_MAGIC */
    uint16_t version;           /* LB_RING_VERSION */
    uint16_t mode;              /* LB_MODE_* */
    uint32_t ring;              /* K of NAME:K */
    uint32_t flags;             /* LB_ATTACH_* */
    char     group[LB_GROUP_NAME_MAX];
};

/* lb_attach_request.flags */
#define LB_ATTACH_SHUNT_REPORTS 0x2u /* the consumer takes LB_F_SHUNT_END records (a worker that shunts) */
#define LB_ATTACH_DOORBELL   0x1u  /* a consumer also wants the ring's doorbell: a third descriptor,
                                    * an eventfd lb writes 1 to when a consumer_waiting has
                                    * LB_WAIT_DOORBELL set after it publishes, and at end of stream */

struct lb_attach_reply {
    uint32_t magic;             /* LB_ATTACH_MAGIC */
    uint16_t version;
    uint16_t reserved0;
    int32_t  error;             /* 0, or an errno value; message says why */
    uint32_t fd_count;          /* descriptors passed with this message (DATA, then CONTROL, then
                                 * the doorbell when LB_ATTACH_DOORBELL was asked) */
    uint64_t data_size;         /* bytes to map of the DATA region */
    uint64_t control_size;      /* bytes to map of the CONTROL region */
    char     message[224];      /* NUL-terminated, human-readable */
};

/* ---- layout checks ------------------------------------------------------------------------- */

_Static_assert(sizeof(struct lb_ring_info) == 256, "lb_ring_info size");
_Static_assert(offsetof(struct lb_ring_info, max_caplen) == 48, "max_caplen");
_Static_assert(offsetof(struct lb_ring_info, producer_pid) == 60, "producer_pid");
_Static_assert(offsetof(struct lb_ring_info, lane_offset) == 64, "lane_offset");
_Static_assert(offsetof(struct lb_ring_info, data_size) == 96, "data_size");
_Static_assert(offsetof(struct lb_ring_info, group) == 128, "group");
_Static_assert(offsetof(struct lb_ring_info, state) == 192, "state on its own cache line");
_Static_assert(offsetof(struct lb_ring_info, heartbeat_ns) == 200, "heartbeat_ns");
_Static_assert(offsetof(struct lb_ring_info, ingress_drops) == 208, "ingress_drops");
_Static_assert(sizeof(struct lb_lane_header) == 2 * LB_CACHELINE, "lane header");
_Static_assert(offsetof(struct lb_lane_header, dropped) == LB_CACHELINE, "lane counters on their own line");
_Static_assert(offsetof(struct lb_lane_header, head) == 0, "head first: the futex word");
_Static_assert(offsetof(struct lb_lane_header, reclaim) == 8, "reclaim");
_Static_assert(sizeof(struct lb_desc) == 64, "descriptor is one cache line");
_Static_assert(offsetof(struct lb_desc, ts_ns) == 0, "ts_ns");
_Static_assert(offsetof(struct lb_desc, data_off) == 8, "data_off");
_Static_assert(offsetof(struct lb_desc, caplen) == 16, "caplen");
_Static_assert(offsetof(struct lb_desc, wirelen) == 20, "wirelen");
_Static_assert(offsetof(struct lb_desc, flow_hash) == 24, "flow_hash");
_Static_assert(offsetof(struct lb_desc, flags) == 32, "flags");
_Static_assert(offsetof(struct lb_desc, l3_off) == 36, "l3_off");
_Static_assert(offsetof(struct lb_desc, encap) == 38, "encap");
_Static_assert(offsetof(struct lb_desc, depth) == 39, "depth");
_Static_assert(offsetof(struct lb_desc, vni) == 40, "vni");
_Static_assert(offsetof(struct lb_desc, vlan) == 44, "vlan");
_Static_assert(offsetof(struct lb_desc, tunnel_len) == 46, "tunnel_len");
_Static_assert(offsetof(struct lb_desc, input) == 48, "input");
_Static_assert(offsetof(struct lb_desc, reserved) == 52, "desc reserved");
_Static_assert(sizeof(struct lb_tunnel_info) == 64, "tunnel info");
_Static_assert(offsetof(struct lb_tunnel_info, family) == 0, "tunnel family");
_Static_assert(offsetof(struct lb_tunnel_info, proto) == 1, "tunnel proto");
_Static_assert(offsetof(struct lb_tunnel_info, encap) == 2, "tunnel encap");
_Static_assert(offsetof(struct lb_tunnel_info, sport) == 4, "tunnel sport");
_Static_assert(offsetof(struct lb_tunnel_info, dport) == 6, "tunnel dport");
_Static_assert(offsetof(struct lb_tunnel_info, src) == 8, "tunnel src");
_Static_assert(offsetof(struct lb_tunnel_info, dst) == 24, "tunnel dst");
_Static_assert(offsetof(struct lb_tunnel_info, vni) == 40, "tunnel vni");
_Static_assert(offsetof(struct lb_tunnel_info, reserved) == 44, "tunnel reserved");
_Static_assert(sizeof(struct lb_consumer_report) == 64, "consumer report");
_Static_assert(offsetof(struct lb_consumer_report, pid) == 0, "report pid");
_Static_assert(offsetof(struct lb_consumer_report, heartbeat_ns) == 8, "report heartbeat");
_Static_assert(offsetof(struct lb_consumer_report, packets_processed) == 16, "processed");
_Static_assert(offsetof(struct lb_consumer_report, loss_gaps) == 24, "loss gaps");
_Static_assert(offsetof(struct lb_consumer_report, loss_acks) == 32, "loss acks");
_Static_assert(sizeof(struct lb_lane_control) == 128, "lane control");
_Static_assert(offsetof(struct lb_lane_control, tail) == 0, "tail first: the futex word");
_Static_assert(offsetof(struct lb_lane_control, consumer_waiting) == 8, "consumer_waiting");
_Static_assert(offsetof(struct lb_lane_control, producer_waiting) == 64, "producer_waiting");
_Static_assert(sizeof(struct lb_attach_request) == 48, "attach request");
_Static_assert(sizeof(struct lb_shunt_end) == 96, "shunt end report");
_Static_assert(offsetof(struct lb_shunt_end, packets_ab) == 48, "shunt end counts");
_Static_assert(offsetof(struct lb_attach_request, flags) == 12, "attach flags");
_Static_assert(sizeof(struct lb_attach_reply) == 256, "attach reply");

#endif /* LB_RING_H */
