/*
 * consumer.c -- the bench's own consumers of one lb ring (bench/pcap/run.sh). One source, built
 * twice, so that the per-packet code is the same through both APIs:
 *
 *   cc -O2 consumer.c -lpcap                     -> pcap_consumer   (libpcap API; run with
 *                                                   liblbpcap preloaded, device lb:NAME:K)
 *   cc -O2 -DLB_ABI consumer.c $(pkg-config --cflags --libs lbworker)
 *                                                -> abi_consumer    (liblbworker's C ABI)
 *
 *   pcap_consumer analyze|count DEVICE           pcap_create/activate, then pcap_dispatch(-1)
 *                                                until the end of the stream
 *   abi_consumer  analyze|count NAME:K RUN_DIR   lb_worker_next_batch(256) + report + release,
 *                                                as examples/c/lb_worker_example.c does
 *   pcap_consumer need FILE                      ring geometry that holds the whole capture:
 *                                                "packets N slots S bytes B" (powers of two)
 *   pcap_consumer cycle OUT N FILE...            writes N frames of the FILEs (pcap or pcapng,
 *                                                Ethernet), going round them, as classic pcap
 *
 * "count" touches the first byte of every packet and adds up lengths: the cost of the
 * library. "analyze" is examples/c/lb_worker_example.c's analysis (TCP capture loss the way
 * Zeek's capture_loss estimates it: ACKs for data never seen) computed from the packet bytes
 * alone: a pcap program gets neither lb's flow hash nor its l3_off, so it finds the IP header
 * behind Ethernet and VLAN tags itself and hashes the connection itself (a symmetric hash of
 * both endpoints with 64x64->128-bit multiplications, like lb's). The abi build runs the very
 * same function (ignoring lb's metadata) so that the two builds differ only in the library.
 *
 * Prints one line on stdout at the end:
 *   packets N bytes B gaps G acks A checksum C drops D
 * Exit status 0 at the end of the stream, 1 otherwise.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef LB_ABI
#include <lb_worker.h>
#else
#include <pcap/pcap.h>
#endif

/* ---- the analysis: examples/c/lb_worker_example.c's, from the bytes -------------------------- */

struct conn {
    uint64_t hash;
    uint8_t  orig[16];
    uint16_t orig_port;
    uint8_t  used, seen[2];
    uint32_t next[2];
};

#define CONNS 65536u
static struct conn conns[CONNS];
static uint64_t gaps, acks, packets, bytes, checksum;

static inline uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static inline int after(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }

static inline uint64_t mum(uint64_t a, uint64_t b) {
    unsigned __int128 r = (unsigned __int128)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/* One endpoint (address, port), mixed on its own; the two are added, so the hash is the same
 * for both directions. */
static inline uint64_t endpoint(const uint8_t *addr, int alen, uint16_t port) {
    uint64_t lo, hi = 0;
    if (alen == 4) {
        uint32_t a;
        memcpy(&a, addr, 4);
        lo = a;
    } else {
        memcpy(&lo, addr, 8);
        memcpy(&hi, addr + 8, 8);
    }
    return mum(lo ^ 0x9e3779b97f4a7c15ull, (hi ^ ((uint64_t)port << 32 | port)) ^ 0xbf58476d1ce4e5b9ull);
}

static inline uint64_t flow_hash(const uint8_t *src, const uint8_t *dst, int alen, uint16_t sport, uint16_t dport, uint8_t proto) {
    return mum(endpoint(src, alen, sport) + endpoint(dst, alen, dport), 0x94d049bb133111ebull ^ proto);
}

static struct conn *lookup(uint64_t hash, const uint8_t *src, int alen, uint16_t sport) {
    for (uint32_t i = 0; i < 8; i++) {
        struct conn *c = &conns[(hash + i) & (CONNS - 1)];
        if (c->used && c->hash == hash) return c;
        if (!c->used) {
            c->used = 1; c->hash = hash; c->orig_port = sport;
            memcpy(c->orig, src, (size_t)alen);
            return c;
        }
    }
    return NULL;
}

/* Where the IP header starts behind Ethernet and up to 8 VLAN tags; 0xffff if not IP. */
static inline uint32_t l3_offset(const uint8_t *d, uint32_t caplen) {
    if (caplen < 14) return 0xffff;
    uint32_t off = 14;
    uint16_t type = be16(d + 12);
    for (int tags = 0; (type == 0x8100 || type == 0x88a8 || type == 0x9100) && tags < 8; tags++) {
        if (off + 4 > caplen) return 0xffff;
        type = be16(d + off + 2);
        off += 4;
    }
    return type == 0x0800 || type == 0x86dd ? off : 0xffff;
}

static void analyze(const uint8_t *data, uint32_t caplen) {
    uint32_t l3 = l3_offset(data, caplen);
    if (l3 == 0xffff || l3 + 40u > caplen) return;
    const uint8_t *ip = data + l3;
    const uint8_t *src, *dst, *tcp;
    int alen;
    uint32_t iplen;
    if ((ip[0] >> 4) == 4) {
        uint32_t ihl = (ip[0] & 15u) * 4u;
        if (ip[9] != 6 || (be16(ip + 6) & 0x1fff) != 0 || ihl < 20) return;
        src = ip + 12; dst = ip + 16; alen = 4; tcp = ip + ihl;
        iplen = be16(ip + 2) > ihl ? be16(ip + 2) - ihl : 0;
    } else if ((ip[0] >> 4) == 6) {
        if (ip[6] != 6) return;
        src = ip + 8; dst = ip + 24; alen = 16; tcp = ip + 40; iplen = be16(ip + 4);
    } else {
        return;
    }
    if (tcp + 20 > data + caplen) return;
    uint16_t sport = be16(tcp), dport = be16(tcp + 2);
    uint32_t seq = be32(tcp + 4), ack = be32(tcp + 8), doff = (tcp[12] >> 4) * 4u;
    uint8_t flags = tcp[13];
    uint32_t len = iplen > doff ? iplen - doff : 0;
    struct conn *c = lookup(flow_hash(src, dst, alen, sport, dport, 6), src, alen, sport);
    if (!c) return;
    int d = (c->orig_port == sport && memcmp(c->orig, src, (size_t)alen) == 0) ? 0 : 1;
    uint32_t end = seq + len + ((flags & 0x02) ? 1 : 0) + ((flags & 0x01) ? 1 : 0);
    if (!c->seen[d]) { c->seen[d] = 1; c->next[d] = end; }
    else if (!after(seq, c->next[d]) && after(end, c->next[d])) c->next[d] = end;
    if (flags & 0x10) {
        acks++;
        if (c->seen[!d] && after(ack, c->next[!d])) { gaps++; c->next[!d] = ack; }
    }
}

static void report(uint64_t drops) {
    printf("packets %llu bytes %llu gaps %llu acks %llu checksum %llu drops %llu\n", (unsigned long long)packets,
           (unsigned long long)bytes, (unsigned long long)gaps, (unsigned long long)acks, (unsigned long long)checksum,
           (unsigned long long)drops);
}

#ifdef LB_ABI
/* ---- through liblbworker ---------------------------------------------------------------------- */

int main(int argc, char **argv) {
    if (argc < 4 || (strcmp(argv[1], "analyze") != 0 && strcmp(argv[1], "count") != 0)) {
        fprintf(stderr, "usage: %s analyze|count NAME:K RUN_DIR\n", argv[0]);
        return 1;
    }
    int full = strcmp(argv[1], "analyze") == 0;
    char err[LB_WORKER_ERRBUF_SIZE];
    struct lb_worker_options o;
    memset(&o, 0, sizeof o);
    o.run_dir = argv[3];
    o.wait_ms = 60000;
    lb_worker_t *w = lb_worker_open_opts(argv[2], &o, err);
    if (!w) { fprintf(stderr, "abi_consumer: %s\n", err); return 1; }
    static struct lb_worker_packet pkts[256];
    int n;
    while ((n = lb_worker_next_batch(w, pkts, 256, 100)) >= 0) {
        for (int i = 0; i < n; i++) {
            if (full) analyze(pkts[i].data, pkts[i].caplen);
            checksum += pkts[i].data[0];
            bytes += pkts[i].caplen;
        }
        packets += (uint64_t)n;
        lb_worker_report(w, packets, gaps, acks);
        lb_worker_release(w);
    }
    if (n != LB_WORKER_EOS) { fprintf(stderr, "abi_consumer: %s ended with %d, not end of stream\n", argv[2], n); return 1; }
    lb_worker_report(w, packets, gaps, acks);
    lb_worker_close(w);
    report(0);
    return 0;
}

#else
/* ---- through libpcap (liblbpcap preloaded) ---------------------------------------------------- */

static void on_analyze(u_char *user, const struct pcap_pkthdr *h, const u_char *data) {
    (void)user;
    analyze(data, h->caplen);
    checksum += data[0];
    bytes += h->caplen;
    packets++;
}

static void on_count(u_char *user, const struct pcap_pkthdr *h, const u_char *data) {
    (void)user;
    checksum += data[0];
    bytes += h->caplen;
    packets++;
}

/* Ring geometry that holds the whole capture: slots for every packet, and bytes for every
 * record (64-byte aligned, plus a 64-byte tunnel record if lb removes a tunnel). */
static int need(const char *file) {
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(file, err);
    if (!p) { fprintf(stderr, "need: %s\n", err); return 1; }
    struct pcap_pkthdr *h;
    const u_char *d;
    uint64_t n = 0, b = 0;
    int r;
    while ((r = pcap_next_ex(p, &h, &d)) == 1) {
        n++;
        b += ((uint64_t)h->caplen + 63) / 64 * 64 + 64;
    }
    if (r != PCAP_ERROR_BREAK) { fprintf(stderr, "need: %s: %s\n", file, pcap_geterr(p)); return 1; }
    pcap_close(p);
    uint64_t slots = 1, size = 1;
    while (slots < n + 1) slots *= 2;
    while (size < b + 65536) size *= 2;
    printf("packets %llu slots %llu bytes %llu\n", (unsigned long long)n, (unsigned long long)slots, (unsigned long long)size);
    return 0;
}

/* N frames of the files, round and round, timestamps moved on so that time keeps increasing. */
static int cycle(const char *out, uint64_t n, int files, char **names) {
    char err[PCAP_ERRBUF_SIZE];
    struct frame { struct pcap_pkthdr h; u_char *d; } *f = NULL;
    size_t count = 0, cap = 0;
    for (int i = 0; i < files; i++) {
        pcap_t *p = pcap_open_offline(names[i], err);
        if (!p) { fprintf(stderr, "cycle: %s\n", err); return 1; }
        if (pcap_datalink(p) != DLT_EN10MB) { fprintf(stderr, "cycle: %s is not Ethernet\n", names[i]); return 1; }
        struct pcap_pkthdr *h;
        const u_char *d;
        while (pcap_next_ex(p, &h, &d) == 1) {
            if (count == cap) {
                cap = cap ? cap * 2 : 4096;
                f = realloc(f, cap * sizeof *f);
                if (!f) { perror("cycle"); return 1; }
            }
            f[count].h = *h;
            f[count].d = malloc(h->caplen);
            if (!f[count].d) { perror("cycle"); return 1; }
            memcpy(f[count].d, d, h->caplen);
            count++;
        }
        pcap_close(p);
    }
    if (count == 0) { fprintf(stderr, "cycle: no frames\n"); return 1; }
    pcap_t *dead = pcap_open_dead(DLT_EN10MB, 262144);
    pcap_dumper_t *dump = pcap_dump_open(dead, out);
    if (!dump) { fprintf(stderr, "cycle: %s\n", pcap_geterr(dead)); return 1; }
    uint64_t t = 1700000000ull * 1000000ull;          /* microseconds */
    for (uint64_t i = 0; i < n; i++) {
        struct pcap_pkthdr h = f[i % count].h;
        t += 10;
        h.ts.tv_sec = (time_t)(t / 1000000u);
        h.ts.tv_usec = (suseconds_t)(t % 1000000u);
        pcap_dump((u_char *)dump, &h, f[i % count].d);
    }
    pcap_dump_close(dump);
    fprintf(stderr, "cycle: %s: %llu frames from %zu distinct\n", out, (unsigned long long)n, count);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "need") == 0) return need(argv[2]);
    if (argc >= 5 && strcmp(argv[1], "cycle") == 0) return cycle(argv[2], strtoull(argv[3], NULL, 10), argc - 4, argv + 4);
    if (argc < 3 || (strcmp(argv[1], "analyze") != 0 && strcmp(argv[1], "count") != 0)) {
        fprintf(stderr, "usage: %s analyze|count DEVICE | need FILE | cycle OUT N FILE...\n", argv[0]);
        return 1;
    }
    pcap_handler cb = strcmp(argv[1], "analyze") == 0 ? on_analyze : on_count;
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_create(argv[2], err);
    if (!p) { fprintf(stderr, "pcap_consumer: %s\n", err); return 1; }
    /* what tcpdump asks for */
    pcap_set_snaplen(p, 262144);
    pcap_set_promisc(p, 1);
    pcap_set_timeout(p, 1000);
    int r = pcap_activate(p);
    if (r < 0) { fprintf(stderr, "pcap_consumer: %s: %s\n", argv[2], pcap_geterr(p)); return 1; }
    /* 0 is a timeout, or the end of the stream the first time; PCAP_ERROR_BREAK after the end */
    while ((r = pcap_dispatch(p, -1, cb, NULL)) >= 0) {}
    if (r != PCAP_ERROR_BREAK) { fprintf(stderr, "pcap_consumer: %s: %s\n", argv[2], pcap_geterr(p)); return 1; }
    struct pcap_stat st;
    memset(&st, 0, sizeof st);
    if (pcap_stats(p, &st) != 0) { fprintf(stderr, "pcap_consumer: pcap_stats: %s\n", pcap_geterr(p)); return 1; }
    pcap_close(p);
    report(st.ps_drop);
    return 0;
}
#endif
