// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * lb_xdp.c -- lb's XDP program. Redirects frames into lb's AF_XDP sockets (one per RX queue,
 * in the XSKMAP "lb_xsks"), either all of them or, with `lb --divert FILTER`, only those that
 * match the filter; everything else goes on to the kernel, so SSH and the host's other traffic
 * keep working on the same interface. Counts what it did per CPU in "lb_stats".
 *
 * Frags-aware ("xdp.frags"): it reads only the first buffer (headers), so it attaches on
 * interfaces with jumbo MTUs and multi-buffer frames reach lb whole (lb binds with XDP_USE_SG).
 *
 * Built by bpf/build.sh (called by scripts/setup): clang -O2 -g -target bpf.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lb_xdp_shared.h"

struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, LB_XDP_MAX_QUEUES);
    __type(key, __u32);
    __type(value, __u32);
} lb_xsks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct lb_xdp_config);
} lb_cfg SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(map_flags, BPF_F_MMAPABLE);
    __uint(max_entries, LB_XDP_MAX_CPUS * LB_XDP_NSTATS);
    __type(key, __u32);
    __type(value, __u64);
} lb_stats SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, LB_XDP_MAX_SHUNTS);
    __type(key, struct lb_shunt_key);
    __type(value, struct lb_shunt_value);
} lb_shunts SEC(".maps");

static __always_inline void count(__u32 what)
{
    __u32 key = (bpf_get_smp_processor_id() % LB_XDP_MAX_CPUS) * LB_XDP_NSTATS + what;
    __u64 *v = bpf_map_lookup_elem(&lb_stats, &key);
    if (v)
        *v += 1;
}

struct vlan_hdr_ {
    __be16 tci;
    __be16 proto;
};

#define LB_ETH_P_FABRICPATH 0x8903
#define LB_ETH_P_PBB 0x88E7

/* Steps over at most two 802.1Q/802.1ad tags; -1 when one is cut short. */
static __always_inline int skip_tags(__u16 *type, void **p, __u32 *off, void *end)
{
#pragma unroll
    for (int i = 0; i < 2; i++) {
        if (*type != bpf_htons(ETH_P_8021Q) && *type != bpf_htons(ETH_P_8021AD))
            break;
        struct vlan_hdr_ *v = *p;
        if ((void *)(v + 1) > end)
            return -1;
        *type = v->proto;
        *p = v + 1;
        *off += sizeof(struct vlan_hdr_);
    }
    return 0;
}

/* Finds the IP protocol and the destination port (0 if none: not TCP/UDP/SCTP, or a non-first
 * fragment). Returns 0 when the frame is IPv4/IPv6, -1 otherwise. Bounded: a FabricPath
 * header, at most two VLAN tags, a PBB I-TAG with the customer's header and at most two more
 * tags (lb decodes both encapsulations, so the filter sees the flow lb hashes), no IPv6
 * extension headers except a fragment header.
 *
 * Packet pointers only ever move by constants: a variable offset (the IPv4 header length)
 * would need CAP_PERFMON from the verifier, and lb asks only for CAP_BPF and CAP_NET_ADMIN.
 * A port behind IPv4 options is read with bpf_xdp_load_bytes at a scalar offset instead. */
static __always_inline int classify(struct xdp_md *ctx, void *data, void *end, __u8 *proto, __u16 *dport)
{
    struct ethhdr *eth = data;
    void *p = eth + 1;
    __u32 off = sizeof(struct ethhdr);
    if (p > end)
        return -1;
    __u16 type = eth->h_proto;
    /* Cisco FabricPath: a 16-byte header, then the classical Ethernet frame */
    if (type == bpf_htons(LB_ETH_P_FABRICPATH)) {
        struct ethhdr *in = data + 16;
        if ((void *)(in + 1) > end)
            return -1;
        type = in->h_proto;
        p = in + 1;
        off = 16 + sizeof(struct ethhdr);
    }
    if (skip_tags(&type, &p, &off, end) < 0)
        return -1;
    /* 802.1ah PBB: a 4-byte I-TAG, then the customer's Ethernet header and its own tags */
    if (type == bpf_htons(LB_ETH_P_PBB)) {
        __u8 *b = p;
        if ((void *)(b + 4 + sizeof(struct ethhdr)) > end)
            return -1;
        type = ((struct ethhdr *)(b + 4))->h_proto;
        p = b + 4 + sizeof(struct ethhdr);
        off += 4 + sizeof(struct ethhdr);
        if (skip_tags(&type, &p, &off, end) < 0)
            return -1;
    }
    int first = 1;
    __u32 ihl = 5;
    if (type == bpf_htons(ETH_P_IP)) {
        struct iphdr *ip = p;
        if ((void *)(ip + 1) > end)
            return -1;
        if (ip->ihl < 5)
            return -1;
        ihl = ip->ihl;
        *proto = ip->protocol;
        if (ip->frag_off & bpf_htons(0x1fff))
            first = 0;
        p = ip + 1;
        off += sizeof(struct iphdr);
    } else if (type == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6 = p;
        if ((void *)(ip6 + 1) > end)
            return -1;
        *proto = ip6->nexthdr;
        p = ip6 + 1;
        off += sizeof(struct ipv6hdr);
        if (*proto == 44) { /* fragment header */
            __u8 *fh = p;
            if ((void *)(fh + 8) > end)
                return -1;
            *proto = fh[0];
            if ((fh[2] << 8 | fh[3]) & 0xfff8)
                first = 0;
            p = fh + 8;
            off += 8;
        }
    } else {
        return -1;
    }
    *dport = 0;
    if (first && (*proto == IPPROTO_TCP || *proto == IPPROTO_UDP || *proto == IPPROTO_SCTP)) {
        __u16 ports[2];
        if (ihl == 5) {
            __u16 *q = p;
            if ((void *)(q + 2) > end)
                return 0;
            ports[1] = q[1];
        } else {
            /* IPv4 options: the ports are (ihl - 5) * 4 bytes further */
            if (bpf_xdp_load_bytes(ctx, off + (ihl - 5) * 4, ports, sizeof ports) < 0)
                return 0;
        }
        *dport = bpf_ntohs(ports[1]);
        if (*dport == 0)
            *dport = 0xffff; /* port 0 never matches a port rule by accident */
    } else if (!first) {
        *dport = 0xfffe;    /* marks a non-first fragment: matched by protocol */
    }
    return 0;
}

/* The TCP/UDP flow of the IP header at `l3` (EtherType `type`), read with bpf_xdp_load_bytes (so
 * no packet pointer moves by a variable amount), into `k` in canonical order: `*fwd` says the
 * packet goes from a to b; also its TCP flags, IP length and where its transport header is.
 * -1: not a plain (unfragmented, option-less IPv4 or extension-less IPv6) TCP/UDP packet. */
static __always_inline int shunt_flow(struct xdp_md *ctx, __u32 l3, __u16 type, struct lb_shunt_key *k, int *fwd,
                                      __u8 *tcpflags, __u32 *iplen, __u32 *l4out)
{
    __u8 h[40];
    __u8 src[16], dst[16];
    __u8 proto;
    __u32 l4;
    __builtin_memset(src, 0, sizeof src);
    __builtin_memset(dst, 0, sizeof dst);
    if (type == bpf_htons(ETH_P_IP)) {
        if (bpf_xdp_load_bytes(ctx, l3, h, 20) < 0)
            return -1;
        if ((h[0] & 0x0f) != 5 || (h[6] & 0x3f) || h[7])
            return -1;                            /* options, or a fragment */
        proto = h[9];
        src[10] = 0xff; src[11] = 0xff; dst[10] = 0xff; dst[11] = 0xff;
        __builtin_memcpy(src + 12, h + 12, 4);
        __builtin_memcpy(dst + 12, h + 16, 4);
        *iplen = (__u32)h[2] << 8 | h[3];
        l4 = l3 + 20;
    } else if (type == bpf_htons(ETH_P_IPV6)) {
        if (bpf_xdp_load_bytes(ctx, l3, h, 40) < 0)
            return -1;
        proto = h[6];
        __builtin_memcpy(src, h + 8, 16);
        __builtin_memcpy(dst, h + 24, 16);
        *iplen = 40 + ((__u32)h[4] << 8 | h[5]);
        l4 = l3 + 40;
    } else {
        return -1;
    }
    if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
        return -1;
    __u8 t[14];
    if (proto == IPPROTO_TCP) {
        if (bpf_xdp_load_bytes(ctx, l4, t, 14) < 0)
            return -1;
        *tcpflags = t[13];
    } else {
        if (bpf_xdp_load_bytes(ctx, l4, t, 4) < 0)
            return -1;
        *tcpflags = 0;
    }
    __u16 sport = (__u16)t[0] << 8 | t[1], dport = (__u16)t[2] << 8 | t[3];
    /* canonical order: the lower (address bytes, then port) endpoint is a */
    int cmp = 0;
#pragma unroll
    for (int i = 0; i < 16; i++) {
        if (cmp == 0 && src[i] != dst[i])
            cmp = src[i] < dst[i] ? -1 : 1;
    }
    if (cmp == 0 && sport != dport)
        cmp = sport < dport ? -1 : 1;
    *fwd = cmp <= 0;
    __builtin_memcpy(k->a, *fwd ? src : dst, 16);
    __builtin_memcpy(k->b, *fwd ? dst : src, 16);
    k->a_port = *fwd ? sport : dport;
    k->b_port = *fwd ? dport : sport;
    k->proto = proto;
    k->pad[0] = 0; k->pad[1] = 0; k->pad[2] = 0;
    *l4out = l4;
    return 0;
}

/* Whether the frame belongs to a flow shunted in every group (and is not its SYN, FIN or RST):
 * then it is counted in its entry and dropped here. The flow is the one lb hashes: the inner
 * one of VXLAN and GENEVE. */
static __always_inline int shunted(struct xdp_md *ctx, void *data, void *end)
{
    struct ethhdr *eth = data;
    void *p = eth + 1;
    __u32 off = sizeof(struct ethhdr);
    if (p > end)
        return 0;
    __u16 type = eth->h_proto;
    if (skip_tags(&type, &p, &off, end) < 0)
        return 0;
    struct lb_shunt_key k;
    int fwd;
    __u8 flags;
    __u32 iplen, l4;
    if (shunt_flow(ctx, off, type, &k, &fwd, &flags, &iplen, &l4) < 0)
        return 0;
    if (k.proto == IPPROTO_UDP && (k.a_port == 4789 || k.b_port == 4789 || k.a_port == 6081 || k.b_port == 6081)) {
        /* a tunnel: the flow inside it */
        __u8 g[8];
        __u32 inner;
        __u16 itype = bpf_htons(ETH_P_TEB);
        if (bpf_xdp_load_bytes(ctx, l4 + 8, g, 8) < 0)
            return 0;
        if (k.a_port == 4789 || k.b_port == 4789) {
            inner = l4 + 16;
        } else {
            if (g[0] >> 6)                        /* GENEVE version 0 only */
                return 0;
            inner = l4 + 16 + (__u32)(g[0] & 0x3f) * 4;
            __u16 pt = (__u16)g[2] << 8 | g[3];
            if (pt == 0x0800 || pt == 0x86DD)
                itype = bpf_htons(pt);
            else if (pt != 0x6558)
                return 0;
        }
        if (itype == bpf_htons(ETH_P_TEB)) {
            __u8 e[18];
            if (bpf_xdp_load_bytes(ctx, inner, e, 14) < 0)
                return 0;
            itype = bpf_htons((__u16)e[12] << 8 | e[13]);
            inner += 14;
            if (itype == bpf_htons(ETH_P_8021Q) || itype == bpf_htons(ETH_P_8021AD)) {
                if (bpf_xdp_load_bytes(ctx, inner, e, 4) < 0)
                    return 0;
                itype = bpf_htons((__u16)e[2] << 8 | e[3]);
                inner += 4;
            }
        }
        if (shunt_flow(ctx, inner, itype, &k, &fwd, &flags, &iplen, &l4) < 0)
            return 0;
    }
    struct lb_shunt_value *v = bpf_map_lookup_elem(&lb_shunts, &k);
    if (!v)
        return 0;
    if (!(v->directions & (fwd ? 1 : 2)))
        return 0;
    if (k.proto == IPPROTO_TCP && (flags & 0x07))
        return 0;                                 /* FIN, SYN, RST: the analyzer sees how it ends */
    /* Two branches with constant offsets. Merged into one pointer plus a per-path offset, the
     * verifier refuses the program without CAP_PERFMON ("pointer arithmetic ... prohibited for
     * !root"): the barrier keeps clang from merging them. */
    if (fwd) {
        __sync_fetch_and_add(&v->packets_ab, 1);
        __sync_fetch_and_add(&v->ip_bytes_ab, iplen);
    } else {
        asm volatile("" : "+r"(v));
        __sync_fetch_and_add(&v->packets_ba, 1);
        __sync_fetch_and_add(&v->ip_bytes_ba, iplen);
    }
    return 1;
}

SEC("xdp.frags")
int lb_xdp(struct xdp_md *ctx)
{
    __u32 zero = 0;
    struct lb_xdp_config *cfg = bpf_map_lookup_elem(&lb_cfg, &zero);
    if (!cfg)
        return XDP_PASS;
    if (cfg->shunting && shunted(ctx, (void *)(long)ctx->data, (void *)(long)ctx->data_end)) {
        count(LB_XDP_SHUNTED);
        return XDP_DROP;
    }
    if (!cfg->divert_all) {
        void *data = (void *)(long)ctx->data;
        void *end = (void *)(long)ctx->data_end;
        __u8 proto = 0;
        __u16 dport = 0;
        if (classify(ctx, data, end, &proto, &dport) < 0) {
            count(LB_XDP_SHORT);
            return XDP_PASS;
        }
        /* fully unrolled: each rule at a constant offset (a moving pointer into the map value
         * would need CAP_PERFMON, see classify) */
        int match = 0;
        __u32 n = cfg->rule_count;
#pragma unroll
        for (int i = 0; i < LB_XDP_MAX_RULES; i++) {
            struct lb_xdp_rule r = cfg->rules[i];
            /* a non-first fragment of a matching protocol follows its first fragment to lb */
            if (i < n && (!r.proto || r.proto == proto) && (!r.dport || dport == 0xfffe || r.dport == dport))
                match = 1;
        }
        if (!match) {
            count(LB_XDP_PASSED);
            return XDP_PASS;
        }
    }
    int action = bpf_redirect_map(&lb_xsks, ctx->rx_queue_index, XDP_PASS);
    if (action == XDP_REDIRECT)
        count(LB_XDP_DIVERTED);
    else
        count(LB_XDP_NO_SOCKET);
    return action;
}

char _license[] SEC("license") = "Dual BSD/GPL";
