/*
 * lb_worker.h -- attach a C or C++ analyzer to one of lb's rings.
 *
 *     #include <lb_worker.h>
 *     char err[LB_WORKER_ERRBUF_SIZE];
 *     lb_worker_t *w = lb_worker_open("zeek:3", err);          // NULL on failure, err says why
 *     struct lb_worker_packet pkts[256];
 *     for (;;) {
 *         int n = lb_worker_next_batch(w, pkts, 256, 100);     // wait up to 100 ms
 *         if (n == 0) continue;                                // timeout
 *         if (n < 0) break;                                    // LB_WORKER_EOS, LB_WORKER_GONE, error
 *         for (int i = 0; i < n; i++) analyze(pkts[i].data, pkts[i].caplen, pkts[i].ts_ns);
 *         lb_worker_report(w, processed += n, gaps, acks);     // shown in lb's stats
 *         lb_worker_release(w);                                // lb may reuse the space now
 *     }
 *     lb_worker_close(w);
 *
 * Build:  cc app.c $(pkg-config --cflags --libs lbworker)
 * The library (liblbworker.so) needs nothing but libc and access to lb's control socket; it
 * links neither libxdp nor libbpf. docs/worker-api.md has the details.
 *
 * Threads: a handle is used by one thread at a time. Different handles are independent.
 */
#ifndef LB_WORKER_H
#define LB_WORKER_H

#include <stdint.h>
#include <stddef.h>
#include "lb_ring.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LB_WORKER_API_VERSION   2   /* 2: lb_worker_shunt, lb_worker_shunt_flow, lb_worker_unshunt_flow */
#define LB_WORKER_ABI_MAJOR     1   /* the SONAME's number: rises only when a program built for an
                                     * older library could no longer run with this one */
#define LB_WORKER_ERRBUF_SIZE   256

/* Return codes of lb_worker_next_batch and friends (0 from next_batch: timeout, no packets). */
#define LB_WORKER_EOS          (-1)  /* end of stream: lb replayed its input to the end, all read */
#define LB_WORKER_GONE         (-2)  /* lb exited or died without an end of stream, all read */
#define LB_WORKER_EINVAL       (-3)  /* bad argument (NULL handle or array, max < 1) */

/* lb_worker_shunt flags */
#define LB_WORKER_SHUNT_ONE_WAY 0x1u  /* only the packet's (or src -> dst's) direction */

/* One packet of a batch. data and tunnel point into the ring (read-only shared memory) and
 * stay valid until lb_worker_release or the next lb_worker_next_batch. */
struct lb_worker_packet {
    const uint8_t *data;                 /* caplen bytes: an Ethernet frame */
    const struct lb_tunnel_info *tunnel; /* outer flow of the removed tunnel, or NULL */
    uint64_t ts_ns;                      /* capture time, ns since the Unix epoch */
    uint64_t flow_hash;                  /* symmetric hash of the innermost flow */
    uint32_t caplen;                     /* bytes at data */
    uint32_t wirelen;                    /* length on the wire (> caplen when truncated) */
    uint32_t flags;                      /* LB_F_* (lb_ring.h): decapsulated, truncated, ... */
    uint16_t l3_off;                     /* offset of the (inner) IP header in data; 0xffff if none */
    uint8_t  encap;                      /* LB_ENCAP_* of the outermost tunnel removed */
    uint8_t  depth;                      /* tunnels removed */
    uint32_t vni;                        /* innermost VNI / GRE key / TEID, 0 if none */
    uint16_t vlan;                       /* outermost VLAN id when LB_F_VLAN */
    uint16_t lane;                       /* lane of the ring it came from */
    uint32_t input;                      /* lb's ingress index */
    uint32_t reserved;
};

/* Options for lb_worker_open_opts. Zero-initialise, then set what you need. */
struct lb_worker_options {
    const char *run_dir;   /* lb's --run-dir; NULL: $LB_RUN_DIR, /run/lb (root), $XDG_RUNTIME_DIR/lb, /tmp/lb-UID */
    int64_t     wait_ms;   /* wait this long for lb to serve the ring: 0 try once, < 0 forever */
    int64_t     nap_us;    /* while traffic flows, lb_worker_next_batch sleeps up to this long when
                            * the ring is empty instead of being woken per packet by lb (many
                            * packets per wake-up, as TPACKET_V3's block timeout): 0 the default,
                            * 10000 (10 ms); < 0 never: woken as soon as lb publishes */
    uint64_t    reserved[5];
};

/* Information about an attached ring. */
struct lb_worker_info {
    char     group[LB_GROUP_NAME_MAX]; /* NAME of NAME:K */
    uint32_t ring;                     /* K */
    uint32_t ring_count;               /* rings in the group */
    uint32_t lanes;
    uint32_t max_caplen;               /* snaplen: longer packets are truncated (LB_F_TRUNCATED) */
    uint32_t link_type;                /* LB_LINKTYPE_ETHERNET */
    int32_t  producer_pid;             /* lb's pid */
    uint64_t instance_id;              /* new for every lb start */
    uint64_t packets_read;             /* packets this handle has read so far */
    uint64_t bad_descriptors;          /* descriptors lb's ring got wrong (delivered with no bytes) */
    uint64_t reserved[4];
};

typedef struct lb_worker lb_worker_t;

/* (Swift implements these functions with @_cdecl; it imports only the types above.) */
#ifndef __swift__

/* Attaches to ring NAME:K of a running lb, waiting up to 60 s for lb to appear. Returns NULL
 * on failure with a message in errbuf (LB_WORKER_ERRBUF_SIZE bytes; may be NULL) and errno
 * set: EBUSY (the ring has a consumer), ENOENT (no such ring / no lb), EINVAL (bad name),
 * EPROTO (protocol mismatch), or the system error. */
lb_worker_t *lb_worker_open(const char *name, char *errbuf);
lb_worker_t *lb_worker_open_opts(const char *name, const struct lb_worker_options *opts, char *errbuf);

/* Releases the previous batch, then fills pkts with up to max packets. Waits up to timeout_ms
 * for the first one (0: do not wait; < 0: until packets, end of stream or lb gone). Returns
 * the number of packets (> 0), 0 on timeout, LB_WORKER_EOS, LB_WORKER_GONE or LB_WORKER_EINVAL. */
int lb_worker_next_batch(lb_worker_t *w, struct lb_worker_packet *pkts, int max, int timeout_ms);

/* Hands every packet read so far back to lb. Their data pointers must not be used afterwards. */
void lb_worker_release(lb_worker_t *w);

/* Writes the worker's report into the ring's control area; lb shows it in its stats
 * (packets_processed_by_worker, worker_loss_gaps / worker_loss_acks / worker_loss_percent,
 * worker_report_age_s). processed: packets the worker has finished with; gaps and acks: its
 * own loss estimate (Zeek's capture_loss: ACKs for data it never saw, out of all ACKs).
 * Cheap (five stores); call it once per batch, before lb_worker_release. */
void lb_worker_report(lb_worker_t *w, uint64_t processed, uint64_t gaps, uint64_t acks);

/* Fills *info. Returns 0, or LB_WORKER_EINVAL. */
int lb_worker_info(const lb_worker_t *w, struct lb_worker_info *info);

/* Detaches. Packets read but not released stay in the ring for the ring's next consumer. */
void lb_worker_close(lb_worker_t *w);

/* Shunting (docs/shunting.md): asks lb to stop sending a flow to this ring's group, for every
 * ring of the group. TCP SYN, FIN and RST of the flow still arrive. One exchange with lb each
 * (a worker asks once per flow, not per packet). Return 0, or a negative errno: -EINVAL
 * (malformed), -ENOSPC (lb's table is full), -ENOENT (no such shunt), -ETIMEDOUT, ...
 *   flags: LB_WORKER_SHUNT_ONE_WAY stops only the packet's (or the flow text's src -> dst)
 *          direction, as Zeek's shunt_flow does; 0 stops both
 *   idle_s, hard_s: end the shunt after idle_s seconds without a shunted packet, or hard_s
 *          seconds after it was added, in packet time (0: never) */
/* The flow of pkt, a packet this handle read (its data may be released already only if the
 * caller copied nothing: call before lb_worker_release). */
int lb_worker_shunt(lb_worker_t *w, const struct lb_worker_packet *pkt, unsigned flags, double idle_s, double hard_s);

/* A flow named as text: "proto=tcp src=10.0.0.1 sport=40000 dst=10.9.9.9 dport=443"
 * (vlan=ID / vni=VNI when lb hashes on them). */
int lb_worker_shunt_flow(lb_worker_t *w, const char *flow, unsigned flags, double idle_s, double hard_s);

/* Ends the shunt of a flow named as text. */
int lb_worker_unshunt_flow(lb_worker_t *w, const char *flow);

/* LB_WORKER_API_VERSION of the library (compare with the header's). */
int lb_worker_api_version(void);
#endif /* __swift__ */

#ifdef __cplusplus
}
#endif

_Static_assert(sizeof(struct lb_worker_packet) == 64, "lb_worker_packet");
_Static_assert(sizeof(struct lb_worker_options) == 64, "lb_worker_options");
_Static_assert(offsetof(struct lb_worker_packet, ts_ns) == 16, "ts_ns");
_Static_assert(offsetof(struct lb_worker_packet, caplen) == 32, "caplen");
_Static_assert(offsetof(struct lb_worker_packet, vni) == 48, "vni");
_Static_assert(offsetof(struct lb_worker_packet, input) == 56, "input");
_Static_assert(sizeof(struct lb_worker_options) == 64, "lb_worker_options");
_Static_assert(sizeof(struct lb_worker_info) == 112, "lb_worker_info");

#endif /* LB_WORKER_H */
