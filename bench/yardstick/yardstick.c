/*
 * yardstick.c -- a minimal C data path to compare lb's Swift data path with.
 *
 * Same job, same memory layout, same protocol: frames held in memory (a classic pcap read
 * into one buffer) are taken 64 at a time, parsed (Ethernet, VLAN, ARP, IPv4, IPv6 with
 * extension headers, TCP/UDP/SCTP ports, ICMP errors, VXLAN decapsulation), hashed with lb's
 * symmetric flow hash (FlowHash.hash, ported), sent to one of 8 rings by the top 12 bits of the
 * hash through an indirection table, and written as a 64-byte struct lb_desc plus the packet
 * bytes (and 64 bytes of struct lb_tunnel_info for a decapsulated packet) into single-producer
 * single-consumer rings laid out as lb_ring.h says, in memfds. Heads are published once per
 * batch; a full ring drops and counts. A consumer thread maps the rings a second time and drains
 * them round-robin, reading each descriptor (validated as LaneConsumer.next does) and the first
 * byte of each packet, releasing per batch.
 *
 * It does what lb does per packet for these inputs and no more: no fragment table, no other
 * tunnels, no other link types. Counters are kept as lb keeps them (relaxed atomic stores that
 * a stats thread could read).
 *
 * usage: yardstick PCAP PACKETS WARMUP SLOTS DATA_BYTES [PRODUCER_CPU CONSUMER_CPU]
 * prints one line of key=value pairs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "../../Sources/CLBRing/include/lb_ring.h"

#define RINGS 8
#define BATCH 64
#define CONSUMER_BATCH 256
#define MAX_CAPLEN 9216
#define TABLE_BITS 12

static void die(const char *what) { perror(what); exit(1); }

/* ---- the flow hash (LBCore FlowKey.swift) ----------------------------------------------- */

static uint64_t K0, K1, K2, K3, K4, K5;

static uint64_t splitmix(uint64_t *s) {
    *s += 0x9E3779B97F4A7C15ULL;
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void seeds(uint64_t seed) {
    uint64_t s = seed;
    K0 = splitmix(&s); K1 = splitmix(&s); K2 = splitmix(&s);
    K3 = splitmix(&s); K4 = splitmix(&s); K5 = splitmix(&s);
}

static inline uint64_t mum(uint64_t a, uint64_t b) {
    unsigned __int128 r = (unsigned __int128)a * b;
    return (uint64_t)(r >> 64) ^ (uint64_t)r;
}

enum { KIND_NONE = 0, KIND_LINK = 1, KIND_ADDR = 2, KIND_PORTS = 3 };

struct flow_key {
    uint64_t src_hi, src_lo, dst_hi, dst_lo;
    uint16_t sport, dport;
    uint8_t proto, kind;
};

static inline uint64_t endpoint(uint64_t hi, uint64_t lo, uint64_t port) {
    return mum(mum(hi ^ K0, lo ^ K1) ^ K2, port ^ K3);
}

/* Five-tuple mode, no VLAN/VNI in the key (lb's defaults). */
static inline uint64_t flow_hash(const struct flow_key *k) {
    uint64_t sp = k->sport, dp = k->dport;
    if (k->kind != KIND_PORTS) { sp = 0; dp = 0; }
    uint64_t a = endpoint(k->src_hi, k->src_lo, sp);
    uint64_t b = endpoint(k->dst_hi, k->dst_lo, dp);
    uint64_t tail = (uint64_t)k->proto | (k->kind == KIND_LINK ? 1u << 8 : 0);
    return mum((a + b) ^ K4, tail ^ K5);
}

/* ---- parsing -------------------------------------------------------------------------------- */

static inline uint16_t be16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return __builtin_bswap16(v); }
static inline uint32_t be32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return __builtin_bswap32(v); }
static inline uint64_t be64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return __builtin_bswap64(v); }
static inline uint64_t mac(const uint8_t *p) { return (uint64_t)be32(p) << 16 | be16(p + 4); }
static inline uint64_t v4mapped(uint32_t a) { return 0x0000FFFF00000000ULL | a; }

struct decoded {
    struct flow_key key;
    int start, end;             /* delivered bytes: frame[start, end) */
    int l3;                     /* innermost IP header, -1 if none */
    uint8_t depth, encap, has_vlan, nonip, error, fragment;
    uint16_t vlan;
    uint32_t vni;
    /* outer flow of the tunnel (lb_tunnel_info) */
    uint64_t o_src_hi, o_src_lo, o_dst_hi, o_dst_lo;
    uint16_t o_sport, o_dport;
    uint8_t o_is6;
};

static void quoted_ports(struct decoded *d, const uint8_t *f, int p, int end, uint8_t proto, int first) {
    if ((proto == 6 || proto == 17 || proto == 132) && first && end - p >= 4) {
        d->key.sport = be16(f + p); d->key.dport = be16(f + p + 2); d->key.kind = KIND_PORTS;
    }
}

static void decode(const uint8_t *f, int n, struct decoded *d) {
    memset(d, 0, sizeof *d);
    d->end = n;
    d->l3 = -1;
    int off = 0, end = n, tags = 0;
    uint64_t ip_src_hi = 0, ip_src_lo = 0, ip_dst_hi = 0, ip_dst_lo = 0;
    uint8_t ip6 = 0;
    uint16_t t;
    uint8_t nh;

ethernet:
    if (end - off < 14) { d->error = 1; return; }
    d->key = (struct flow_key){ .src_hi = 1ULL << 63, .dst_hi = 1ULL << 63, .src_lo = mac(f + off + 6),
                                .dst_lo = mac(f + off), .kind = KIND_LINK };
    tags = 0;
    t = be16(f + off + 12);
    off += 14;
ethertype:
    switch (t) {
    case 0x0800: goto ipv4;
    case 0x86DD: goto ipv6;
    case 0x8100: case 0x88A8: case 0x9100: case 0x9200:
        if (++tags > 8) { d->error = 1; return; }
        if (end - off < 4) { d->error = 1; return; }
        if (tags == 1) { d->vlan = be16(f + off) & 0x0FFF; d->has_vlan = 1; }
        t = be16(f + off + 2);
        off += 4;
        goto ethertype;
    case 0x0806:
        d->nonip = 1;
        if (end - off >= 28 && be16(f + off) == 1 && be16(f + off + 2) == 0x0800)
            d->key = (struct flow_key){ .src_lo = v4mapped(be32(f + off + 14)), .dst_lo = v4mapped(be32(f + off + 24)),
                                        .kind = KIND_ADDR };
        return;
    default:
        d->nonip = 1;
        return;
    }

ipv4: {
    if (end - off < 20) { d->error = 1; return; }
    uint8_t vihl = f[off];
    int ihl = (vihl & 15) * 4, total = be16(f + off + 2);
    if (vihl >> 4 != 4 || ihl < 20 || total < ihl) { d->error = 1; return; }
    if (end - off < ihl) { d->error = 1; return; }
    uint8_t proto = f[off + 9];
    d->key = (struct flow_key){ .src_lo = v4mapped(be32(f + off + 12)), .dst_lo = v4mapped(be32(f + off + 16)),
                                .proto = proto, .kind = KIND_ADDR };
    d->nonip = 0;
    d->l3 = off;
    ip_src_hi = 0; ip_src_lo = d->key.src_lo; ip_dst_hi = 0; ip_dst_lo = d->key.dst_lo; ip6 = 0;
    if (off + total < end) end = off + total;
    uint16_t frag = be16(f + off + 6);
    off += ihl;
    if (frag & 0x3FFF) {                 /* a fragment: ports only from the first one */
        d->fragment = 1;
        if ((frag & 0x1FFF) == 0 && (proto == 6 || proto == 17 || proto == 132) && end - off >= 4) {
            d->key.sport = be16(f + off); d->key.dport = be16(f + off + 2); d->key.kind = KIND_PORTS;
        }
        return;
    }
    nh = proto;
    goto l4;
}

ipv6: {
    if (end - off < 40) { d->error = 1; return; }
    if (f[off] >> 4 != 6) { d->error = 1; return; }
    int plen = be16(f + off + 4);
    nh = f[off + 6];
    d->key = (struct flow_key){ .src_hi = be64(f + off + 8), .src_lo = be64(f + off + 16),
                                .dst_hi = be64(f + off + 24), .dst_lo = be64(f + off + 32), .kind = KIND_ADDR };
    d->l3 = off;
    d->nonip = 0;
    ip_src_hi = d->key.src_hi; ip_src_lo = d->key.src_lo; ip_dst_hi = d->key.dst_hi; ip_dst_lo = d->key.dst_lo; ip6 = 1;
    if (plen != 0 && off + 40 + plen < end) end = off + 40 + plen;
    off += 40;
    for (int headers = 0;; headers++) {
        d->key.proto = nh;
        if (headers > 16) { d->error = 1; return; }
        int len;
        switch (nh) {
        case 0: case 43: case 60: case 135: case 139: case 140:
            if (end - off < 8) { d->error = 1; return; }
            len = (f[off + 1] + 1) * 8;
            if (end - off < len) { d->error = 1; return; }
            nh = f[off]; off += len;
            continue;
        case 51:
            if (end - off < 8) { d->error = 1; return; }
            len = (f[off + 1] + 2) * 4;
            if (end - off < len) { d->error = 1; return; }
            nh = f[off]; off += len;
            continue;
        case 44: {
            if (end - off < 8) { d->error = 1; return; }
            uint8_t next = f[off];
            uint16_t fo = be16(f + off + 2);
            off += 8;
            d->key.proto = next;
            d->fragment = 1;
            if ((fo & 0xFFF8) == 0 && (next == 6 || next == 17 || next == 132) && end - off >= 4) {
                d->key.sport = be16(f + off); d->key.dport = be16(f + off + 2); d->key.kind = KIND_PORTS;
            }
            return;
        }
        default:
            goto l4;
        }
    }
}

l4:
    switch (nh) {
    case 6: case 132:
        if (end - off < 4) { d->error = 1; return; }
        d->key.sport = be16(f + off); d->key.dport = be16(f + off + 2); d->key.kind = KIND_PORTS;
        return;
    case 17: {
        if (end - off < 8) {
            if (end - off >= 4) { d->key.sport = be16(f + off); d->key.dport = be16(f + off + 2); d->key.kind = KIND_PORTS; }
            d->error = 1;
            return;
        }
        uint16_t sp = be16(f + off), dp = be16(f + off + 2);
        d->key.sport = sp; d->key.dport = dp; d->key.kind = KIND_PORTS;
        /* (lb also looks for Teredo on any UDP port by its shape, an IPv6 packet filling the
         * payload; none of these inputs has one, so that is not ported.) */
        if (dp != 4789 && sp != 4789) return;
        int len = be16(f + off + 4);
        int p = off + 8, pe = len >= 8 && off + len < end ? off + len : end;
        if (pe - p < 8) { d->error = 1; return; }
        if (!(f[p] & 0x08)) { d->error = 1; return; }
        if (d->depth >= 8) { d->error = 1; return; }
        if (d->depth == 0) {
            d->encap = LB_ENCAP_VXLAN;
            d->o_src_hi = ip_src_hi; d->o_src_lo = ip_src_lo; d->o_dst_hi = ip_dst_hi; d->o_dst_lo = ip_dst_lo;
            d->o_is6 = ip6; d->o_sport = sp; d->o_dport = dp;
        }
        d->depth++;
        d->vni = be32(f + p + 4) >> 8;
        d->start = p + 8;
        d->end = pe;
        off = p + 8;
        end = pe;
        goto ethernet;
    }
    case 1:
        if (end - off < 8) { d->error = 1; return; }
        switch (f[off]) {
        case 3: case 4: case 5: case 11: case 12: {
            int q = off + 8;
            if (end - q < 20 || f[q] >> 4 != 4) { d->error = 1; return; }
            int ihl = (f[q] & 15) * 4;
            if (ihl < 20 || end - q < ihl) { d->error = 1; return; }
            d->key = (struct flow_key){ .src_lo = v4mapped(be32(f + q + 12)), .dst_lo = v4mapped(be32(f + q + 16)),
                                        .proto = f[q + 9], .kind = KIND_ADDR };
            quoted_ports(d, f, q + ihl, end, f[q + 9], (be16(f + q + 6) & 0x1FFF) == 0);
            return;
        }
        default: return;
        }
    case 58:
        if (end - off < 8) { d->error = 1; return; }
        if (f[off] >= 1 && f[off] <= 4) {
            int q = off + 8;
            if (end - q < 40 || f[q] >> 4 != 6) { d->error = 1; return; }
            d->key = (struct flow_key){ .src_hi = be64(f + q + 8), .src_lo = be64(f + q + 16), .dst_hi = be64(f + q + 24),
                                        .dst_lo = be64(f + q + 32), .proto = f[q + 6], .kind = KIND_ADDR };
            quoted_ports(d, f, q + 40, end, f[q + 6], 1);
        }
        return;
    default:
        return;
    }
}

/* ---- rings (lb_ring.h; the protocol of LaneProducer / LaneConsumer) ------------------------ */

static size_t page_round(size_t n) { return (n + LB_PAGE - 1) / LB_PAGE * LB_PAGE; }

struct producer {
    _Atomic uint64_t *head;
    _Atomic uint64_t *reclaim;
    _Atomic uint64_t *tail;
    _Atomic uint32_t *consumer_waiting;
    struct lb_desc *descs;
    uint8_t *data;
    uint64_t *starts;
    uint64_t slots, data_bytes;
    uint64_t next, published, cached_tail, data_head, data_limit, bad_tails;
};

struct consumer {
    const _Atomic uint64_t *head;
    _Atomic uint64_t *tail;
    _Atomic uint32_t *producer_waiting;
    const struct lb_desc *descs;
    const uint8_t *data;
    uint64_t slots, data_bytes, pos, cached_head, bad;
};

static struct producer prod[RINGS];
static struct consumer cons[RINGS];
static uint16_t table[1 << TABLE_BITS];
static _Atomic uint32_t attached[RINGS];

/* lb's counters: relaxed loads and stores, one writer */
enum { C_RECEIVED, C_RECEIVED_BYTES, C_VXLAN, C_UNPARSED, C_NONIP, C_TRUNCATED, C_BAD_TAILS, C_GLOBAL };
enum { R_FORWARDED, R_FORWARDED_BYTES, R_DROPPED_FULL, R_PER_RING };
static _Atomic uint64_t counters[C_GLOBAL + RINGS * R_PER_RING] __attribute__((aligned(64)));
static inline void count(int i, uint64_t n) {
    atomic_store_explicit(&counters[i], atomic_load_explicit(&counters[i], memory_order_relaxed) + n, memory_order_relaxed);
}
static inline void count_ring(int r, int c, uint64_t n) { count(C_GLOBAL + r * R_PER_RING + c, n); }
static uint64_t get_ring(int c) {
    uint64_t s = 0;
    for (int r = 0; r < RINGS; r++) s += atomic_load_explicit(&counters[C_GLOBAL + r * R_PER_RING + c], memory_order_relaxed);
    return s;
}

static int memfd(const char *name, size_t size) {
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) die("memfd_create");
    if (ftruncate(fd, (off_t)size) != 0) die("ftruncate");
    return fd;
}

static void *map(int fd, size_t size, int prot) {
    void *p = mmap(NULL, size, prot, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) die("mmap");
    return p;
}

static void setup_rings(uint64_t slots, uint64_t data_bytes) {
    size_t desc_off = LB_PAGE, data_off = page_round(desc_off + slots * 64);
    size_t lane_stride = page_round(data_off + data_bytes), data_size = LB_PAGE + lane_stride;
    size_t control_size = lb_control_size(1);
    for (int r = 0; r < RINGS; r++) {
        int dfd = memfd("yardstick:data", data_size), cfd = memfd("yardstick:control", control_size);
        uint8_t *d = map(dfd, data_size, PROT_READ | PROT_WRITE), *c = map(cfd, control_size, PROT_READ | PROT_WRITE);
        uint8_t *lane = d + LB_PAGE, *lc = c + LB_CONTROL_LANES;
        prod[r] = (struct producer){
            .head = (_Atomic uint64_t *)lane, .tail = (_Atomic uint64_t *)lc,
            .reclaim = (_Atomic uint64_t *)(lane + offsetof(struct lb_lane_header, reclaim)),
            .consumer_waiting = (_Atomic uint32_t *)(lc + offsetof(struct lb_lane_control, consumer_waiting)),
            .descs = (struct lb_desc *)(lane + desc_off), .data = lane + data_off,
            .starts = calloc(slots, sizeof(uint64_t)), .slots = slots, .data_bytes = data_bytes, .data_limit = data_bytes,
        };
        /* the consumer's own mappings: DATA read-only, CONTROL read-write */
        const uint8_t *cd = map(dfd, data_size, PROT_READ);
        uint8_t *cc = map(cfd, control_size, PROT_READ | PROT_WRITE);
        const uint8_t *clane = cd + LB_PAGE;
        uint8_t *clc = cc + LB_CONTROL_LANES;
        cons[r] = (struct consumer){
            .head = (const _Atomic uint64_t *)clane, .tail = (_Atomic uint64_t *)clc,
            .producer_waiting = (_Atomic uint32_t *)(clc + offsetof(struct lb_lane_control, producer_waiting)),
            .descs = (const struct lb_desc *)(clane + desc_off), .data = clane + data_off,
            .slots = slots, .data_bytes = data_bytes,
        };
        atomic_store_explicit(&attached[r], 1, memory_order_release);
    }
    for (int b = 0; b < 1 << TABLE_BITS; b++) table[b] = (uint16_t)(b % RINGS);
}

__attribute__((noinline)) static void refresh_tail(struct producer *p) {
    uint64_t t = atomic_load_explicit(p->tail, memory_order_acquire);
    if (t - p->cached_tail <= p->published - p->cached_tail) {
        if (t != p->cached_tail) atomic_store_explicit(p->reclaim, t, memory_order_release);
        p->cached_tail = t;
    } else {
        p->bad_tails++;
    }
    p->data_limit = (p->cached_tail == p->next ? p->data_head : p->starts[p->cached_tail & (p->slots - 1)]) + p->data_bytes;
}

static inline struct lb_desc *reserve(struct producer *p, int bytes, uint64_t *offset) {
    uint64_t need = (uint64_t)(bytes + 63) & ~63ULL;
    uint64_t pos = p->data_head, within = pos & (p->data_bytes - 1);
    if (within + need > p->data_bytes) pos += p->data_bytes - within;
    if (p->next - p->cached_tail >= p->slots || pos + need > p->data_limit) {
        refresh_tail(p);
        if (p->next - p->cached_tail >= p->slots || pos + need > p->data_limit) return NULL;
    }
    p->starts[p->next & (p->slots - 1)] = pos;
    p->data_head = pos + need;
    *offset = pos & (p->data_bytes - 1);
    return p->descs + (p->next & (p->slots - 1));
}

static void publish_all(void) {
    for (int r = 0; r < RINGS; r++) {
        struct producer *p = &prod[r];
        if (p->next == p->published) continue;
        atomic_store_explicit(p->head, p->next, memory_order_seq_cst);
        p->published = p->next;
        if (atomic_load_explicit(p->consumer_waiting, memory_order_seq_cst)) { /* lb would futex-wake; never set here */ }
    }
    uint64_t bad = 0;
    for (int r = 0; r < RINGS; r++) bad += prod[r].bad_tails;
    if (bad) atomic_store_explicit(&counters[C_BAD_TAILS], bad, memory_order_relaxed);
}

/* ---- the data path ------------------------------------------------------------------------- */

struct frame { const uint8_t *bytes; int caplen, wirelen; uint64_t ts; uint32_t linktype, input; };

static void write_tunnel_info(uint8_t *p, const struct decoded *d) {
    struct lb_tunnel_info *t = (struct lb_tunnel_info *)p;
    memset(t, 0, sizeof *t);
    t->family = d->o_is6 ? 6 : 4;
    t->proto = 17;
    t->encap = d->encap;
    t->sport = d->o_sport;
    t->dport = d->o_dport;
    if (d->o_is6) {
        uint64_t v[4] = { __builtin_bswap64(d->o_src_hi), __builtin_bswap64(d->o_src_lo),
                          __builtin_bswap64(d->o_dst_hi), __builtin_bswap64(d->o_dst_lo) };
        memcpy(t->src, v, 16); memcpy(t->dst, v + 2, 16);
    } else {
        uint32_t s = __builtin_bswap32((uint32_t)d->o_src_lo), ds = __builtin_bswap32((uint32_t)d->o_dst_lo);
        memcpy(t->src, &s, 4); memcpy(t->dst, &ds, 4);
    }
    t->vni = d->vni;
}

static inline void handle(const struct frame *fr) {
    count(C_RECEIVED, 1);
    count(C_RECEIVED_BYTES, (uint64_t)fr->wirelen);
    struct decoded d;
    decode(fr->bytes, fr->caplen, &d);
    if (d.depth) count(C_VXLAN, 1);
    if (d.error) count(C_UNPARSED, 1);
    if (d.nonip) count(C_NONIP, 1);
    uint64_t hash = flow_hash(&d.key);

    uint32_t flags = 0;
    if (d.depth) flags |= LB_F_DECAPSULATED | LB_F_TUNNEL_INFO;
    if (d.error) flags |= LB_F_PARSE_ERROR;
    if (d.fragment) flags |= LB_F_FRAGMENT;
    if (d.has_vlan) flags |= LB_F_VLAN;
    if (d.nonip) flags |= LB_F_NON_IP;
    int caplen = d.end - d.start;
    int wire = d.end == fr->caplen ? caplen + (fr->wirelen > fr->caplen ? fr->wirelen - fr->caplen : 0) : caplen;
    if (caplen > MAX_CAPLEN) { caplen = MAX_CAPLEN; flags |= LB_F_TRUNCATED; count(C_TRUNCATED, 1); }
    int tunnel = d.depth ? 64 : 0;

    int r = table[hash >> (64 - TABLE_BITS)];
    if (!atomic_load_explicit(&attached[r], memory_order_relaxed)) return;
    uint64_t offset;
    struct lb_desc *desc = reserve(&prod[r], tunnel + caplen, &offset);
    if (!desc) { count_ring(r, R_DROPPED_FULL, 1); return; }
    uint8_t *rec = prod[r].data + offset;
    if (tunnel) write_tunnel_info(rec, &d);
    memcpy(rec + tunnel, fr->bytes + d.start, (size_t)caplen);
    uint16_t l3 = d.l3 >= d.start && d.l3 - d.start < caplen ? (uint16_t)(d.l3 - d.start) : 0xFFFF;
    *desc = (struct lb_desc){ .ts_ns = fr->ts, .data_off = offset + (uint64_t)tunnel, .caplen = (uint32_t)caplen,
                              .wirelen = (uint32_t)(wire > caplen ? wire : caplen), .flow_hash = hash, .flags = flags,
                              .l3_off = l3, .encap = d.encap, .depth = d.depth, .vni = d.vni, .vlan = d.vlan,
                              .tunnel_len = (uint16_t)tunnel, .input = fr->input };
    prod[r].next++;
    count_ring(r, R_FORWARDED, 1);
    count_ring(r, R_FORWARDED_BYTES, (uint64_t)caplen);
}

/* The capture in memory, cycled through. */
static struct frame *frames;
static size_t nframes, cursor;

static size_t receive(struct frame *out, size_t max, size_t *left) {
    size_t n = *left < max ? *left : max, i = cursor;
    for (size_t k = 0; k < n; k++) {
        out[k] = frames[i];
        if (++i == nframes) i = 0;
    }
    cursor = i;
    *left -= n;
    return n;
}

static void run(size_t packets) {
    static struct frame batch[BATCH];
    size_t left = packets;
    for (;;) {
        size_t n = receive(batch, BATCH, &left);
        if (n == 0) break;
        for (size_t i = 0; i < n; i++) handle(&batch[i]);
        publish_all();
    }
    publish_all();
}

/* ---- the consumer -------------------------------------------------------------------------- */

static _Atomic int stop, ready;
static uint64_t c_packets, c_hashsum, c_bytesum, c_bad;
static int consumer_cpu = 1;

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    if (rc) { errno = rc; die("pthread_setaffinity_np"); }
}

static inline int next_packet(struct consumer *c, struct lb_desc *out, const uint8_t **bytes) {
    if (c->pos == c->cached_head) {
        c->cached_head = atomic_load_explicit(c->head, memory_order_acquire);
        if (c->pos == c->cached_head) return 0;
    }
    struct lb_desc d = c->descs[c->pos & (c->slots - 1)];
    c->pos++;
    uint64_t off = d.data_off, len = d.caplen;
    if (!(off < c->data_bytes && len <= MAX_CAPLEN && off + len <= c->data_bytes &&
          (d.tunnel_len == 0 || (d.tunnel_len == 64 && off >= 64)))) {
        c->bad++;
        d.caplen = 0;
        *bytes = c->data;
    } else {
        *bytes = c->data + off;
    }
    *out = d;
    return 1;
}

static void release(struct consumer *c) {
    atomic_store_explicit(c->tail, c->pos, memory_order_seq_cst);
    if (atomic_load_explicit(c->producer_waiting, memory_order_seq_cst)) { /* would futex-wake lb */ }
}

static void *consumer_main(void *arg) {
    (void)arg;
    pin(consumer_cpu);
    atomic_store(&ready, 1);
    uint64_t n = 0, hs = 0, bs = 0;
    for (;;) {
        int got = 0;
        for (int r = 0; r < RINGS; r++) {
            struct lb_desc d;
            const uint8_t *b;
            int k = 0;
            while (k < CONSUMER_BATCH && next_packet(&cons[r], &d, &b)) {
                hs += d.flow_hash;
                if (d.caplen > 0) bs += b[0];
                k++;
            }
            if (k > 0) { release(&cons[r]); got += k; }
        }
        if (got > 0) n += (uint64_t)got;
        else if (atomic_load_explicit(&stop, memory_order_acquire)) {
            int left = 0;
            for (int r = 0; r < RINGS; r++)
                if (atomic_load_explicit(cons[r].head, memory_order_acquire) != cons[r].pos) left = 1;
            if (!left) break;
        }
    }
    c_packets = n; c_hashsum = hs; c_bytesum = bs;
    for (int r = 0; r < RINGS; r++) c_bad += cons[r].bad;
    return NULL;
}

/* ---- main ---------------------------------------------------------------------------------- */

static uint64_t mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t thread_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void load_pcap(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) die(path);
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *buf = aligned_alloc(64, ((size_t)size + 63) & ~(size_t)63);
    if (!buf || fread(buf, 1, (size_t)size, fp) != (size_t)size) die("read pcap");
    fclose(fp);
    uint32_t magic;
    memcpy(&magic, buf, 4);
    if (magic != 0xA1B23C4D && magic != 0xA1B2C3D4) { fprintf(stderr, "%s: not a little-endian classic pcap\n", path); exit(1); }
    int ns = magic == 0xA1B23C4D;
    uint32_t linktype;
    memcpy(&linktype, buf + 20, 4);
    size_t cap = 1024;
    frames = malloc(cap * sizeof *frames);
    for (long off = 24; off + 16 <= size;) {
        uint32_t h[4];
        memcpy(h, buf + off, 16);
        if (off + 16 + (long)h[2] > size) break;
        if (nframes == cap) frames = realloc(frames, (cap *= 2) * sizeof *frames);
        frames[nframes++] = (struct frame){ .bytes = buf + off + 16, .caplen = (int)h[2],
                                            .wirelen = (int)(h[3] > h[2] ? h[3] : h[2]),
                                            .ts = (uint64_t)h[0] * 1000000000ULL + (ns ? h[1] : (uint64_t)h[1] * 1000),
                                            .linktype = linktype & 0xFFFF, .input = 0 };
        off += 16 + (long)h[2];
    }
    if (nframes == 0) { fprintf(stderr, "%s: no packets\n", path); exit(1); }
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s PCAP PACKETS WARMUP SLOTS DATA_BYTES [PRODUCER_CPU CONSUMER_CPU]\n", argv[0]);
        return 2;
    }
    size_t packets = strtoull(argv[2], NULL, 10), warmup = strtoull(argv[3], NULL, 10);
    uint64_t slots = strtoull(argv[4], NULL, 10), data_bytes = strtoull(argv[5], NULL, 10);
    int producer_cpu = argc > 6 ? atoi(argv[6]) : 0;
    consumer_cpu = argc > 7 ? atoi(argv[7]) : 1;
    seeds(0x6C625F666C6F7721ULL);   /* HashSeeds.standard */
    load_pcap(argv[1]);

    /* the same checksum lb-bench computes: every frame decoded once, in order */
    uint64_t hashsum = 0xCBF29CE484222325ULL;
    uint64_t bytes = 0;
    for (size_t i = 0; i < nframes; i++) {
        struct decoded d;
        decode(frames[i].bytes, frames[i].caplen, &d);
        hashsum = (hashsum ^ flow_hash(&d.key)) * 0x100000001B3ULL;
        bytes += (uint64_t)frames[i].caplen;
    }
    if (getenv("YARDSTICK_DUMP")) {
        for (size_t i = 0; i < nframes; i++) {
            struct decoded d;
            decode(frames[i].bytes, frames[i].caplen, &d);
            printf("%zu %016llx\n", i, (unsigned long long)flow_hash(&d.key));
        }
        return 0;
    }

    pin(producer_cpu);
    setup_rings(slots, data_bytes);
    pthread_t t;
    if (pthread_create(&t, NULL, consumer_main, NULL)) die("pthread_create");
    while (!atomic_load(&ready)) sched_yield();

    run(warmup);
    uint64_t drops0 = get_ring(R_DROPPED_FULL);
    uint64_t c0 = thread_cpu(), t0 = mono();
    run(packets);
    uint64_t t1 = mono(), c1 = thread_cpu();
    uint64_t drops = get_ring(R_DROPPED_FULL) - drops0, forwarded = get_ring(R_FORWARDED);
    atomic_store_explicit(&stop, 1, memory_order_release);
    pthread_join(t, NULL);

    printf("frames=%zu bytes=%llu hashsum=%016llx packets=%zu nanos=%llu drops=%llu drops_total=%llu forwarded=%llu "
           "consumed=%llu consumer_hashsum=%016llx consumer_bytesum=%llu bad=%llu cpu_nanos=%llu\n",
           nframes, (unsigned long long)bytes, (unsigned long long)hashsum, packets, (unsigned long long)(t1 - t0),
           (unsigned long long)drops, (unsigned long long)get_ring(R_DROPPED_FULL), (unsigned long long)forwarded, (unsigned long long)c_packets,
           (unsigned long long)c_hashsum, (unsigned long long)c_bytesum, (unsigned long long)c_bad,
           (unsigned long long)(c1 - c0));
    return 0;
}
