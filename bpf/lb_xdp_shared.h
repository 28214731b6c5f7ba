/*
 * lb_xdp_shared.h -- what lb's XDP program (lb_xdp.c) and lb's userspace (Sources/CLBXdp) agree on:
 * the divert filter in the "lb_cfg" map and the counter layout of the "lb_stats" map.
 */
#ifndef LB_XDP_SHARED_H
#define LB_XDP_SHARED_H

#define LB_XDP_MAX_RULES 16
#define LB_XDP_MAX_QUEUES 256
#define LB_XDP_MAX_CPUS 128
#define LB_XDP_MAX_SHUNTS 65536

/* One divert rule: matches when every non-zero field matches. */
struct lb_xdp_rule {
    unsigned char proto;      /* IP protocol (6 tcp, 17 udp, 47 gre, ...); 0 = any */
    unsigned char pad;
    unsigned short dport;     /* TCP/UDP/SCTP destination port in host order; 0 = any */
};

struct lb_xdp_config {
    unsigned int divert_all;  /* 1: every frame goes to lb (no --divert) */
    unsigned int rule_count;  /* a frame matching any rule goes to lb, the rest to the kernel */
    struct lb_xdp_rule rules[LB_XDP_MAX_RULES];
    unsigned int shunting;    /* 1: look packets up in "lb_shunts" (some flow is shunted in every group) */
};

/* A shunted flow in "lb_shunts", as lb's hash sees it: the two endpoints in canonical order (a
 * is the lower: address bytes, then port), addresses as 16 bytes (IPv4 mapped ::ffff:a.b.c.d),
 * ports in host order. Only plain TCP/UDP flows, directly on Ethernet (up to two VLAN tags) or
 * inside VXLAN (4789) or GENEVE (6081). */
struct lb_shunt_key {
    unsigned char a[16];
    unsigned char b[16];
    unsigned short a_port;
    unsigned short b_port;
    unsigned char proto;
    unsigned char pad[3];
};

/* What the program does with it, and what it dropped (updated atomically by every CPU). */
struct lb_shunt_value {
    unsigned long long packets_ab;  /* dropped from a to b, and their IP bytes */
    unsigned long long ip_bytes_ab;
    unsigned long long packets_ba;
    unsigned long long ip_bytes_ba;
    unsigned char directions;  /* 1: a -> b, 2: b -> a */
    unsigned char pad[7];
};

/* Counters: lb_stats[cpu * LB_XDP_NSTATS + i], one row per CPU (plain adds, no atomics: XDP on
 * one CPU does not race with itself), in an mmapable array that lb reads without a syscall. */
enum {
    LB_XDP_DIVERTED = 0,      /* redirected to lb's AF_XDP socket */
    LB_XDP_PASSED,            /* not matching --divert: given to the kernel */
    LB_XDP_NO_SOCKET,         /* matching, but no lb socket on this RX queue: given to the kernel */
    LB_XDP_SHORT,             /* too short to parse (not matching): given to the kernel */
    LB_XDP_SHUNTED,           /* a shunted flow's packet (not SYN/FIN/RST): dropped here */
    LB_XDP_NSTATS_USED,
    LB_XDP_NSTATS = 8
};

#endif
