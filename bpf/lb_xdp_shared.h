/*
 * lb_xdp_shared.h -- what lb's XDP program (lb_xdp.c) and lb's userspace (Sources/CLBXdp) agree on:
 * the divert filter in the "lb_cfg" map and the counter layout of the "lb_stats" map.
 */
#ifndef LB_XDP_SHARED_H
#define LB_XDP_SHARED_H

#define LB_XDP_MAX_RULES 16
#define LB_XDP_MAX_QUEUES 256
#define LB_XDP_MAX_CPUS 128

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
};

/* Counters: lb_stats[cpu * LB_XDP_NSTATS + i], one row per CPU (plain adds, no atomics: XDP on
 * one CPU does not race with itself), in an mmapable array that lb reads without a syscall. */
enum {
    LB_XDP_DIVERTED = 0,      /* redirected to lb's AF_XDP socket */
    LB_XDP_PASSED,            /* not matching --divert: given to the kernel */
    LB_XDP_NO_SOCKET,         /* matching, but no lb socket on this RX queue: given to the kernel */
    LB_XDP_SHORT,             /* too short to parse (not matching): given to the kernel */
    LB_XDP_NSTATS_USED,
    LB_XDP_NSTATS = 8
};

#endif
