/*
 * lb_worker_example.c -- a minimal analyzer attached to one of lb's rings through liblbworker.
 *
 *     cc -O2 -o lb_worker_example lb_worker_example.c $(pkg-config --cflags --libs lbworker)
 *     ./lb_worker_example zeek:3 [RUN_DIR]
 *
 * It reads batches, estimates capture loss the way Zeek's capture_loss does (ACKs for TCP data
 * it never saw, out of all ACKs), reports processed packets and that estimate back to lb after
 * every batch (lb shows them in its stats for the ring), and prints its totals at the end:
 *
 *     ring zeek:3 processed 1234 gaps 2 acks 800 bytes 567890
 *
 * Exit status: 0 at end of stream, 1 if attaching failed, 2 if lb went away mid-stream.
 */
#include <lb_worker.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* One TCP connection, keyed by lb's flow hash (the same for both directions). */
struct conn {
    uint64_t hash;
    uint8_t  orig[16];      /* originator address (first packet's source) */
    uint16_t orig_port;
    uint8_t  used, seen[2];
    uint32_t next[2];       /* per direction: end of the contiguous data seen so far */
};

#define CONNS 65536u
static struct conn conns[CONNS];
static uint64_t gaps, acks;

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static int after(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; } /* a > b, modulo 2^32 */

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
    return NULL; /* table full around this hash: not tracked */
}

/* Looks at one packet; lb says where its (inner) IP header starts. */
static void analyze(const struct lb_worker_packet *p) {
    if (p->l3_off == 0xffff || p->l3_off + 40u > p->caplen) return;
    const uint8_t *ip = p->data + p->l3_off;
    const uint8_t *src, *tcp;
    int alen;
    uint32_t iplen;     /* bytes after the IP header, from the IP header (not the capture) */
    if ((ip[0] >> 4) == 4) {
        uint32_t ihl = (ip[0] & 15u) * 4u;
        if (ip[9] != 6 || (be16(ip + 6) & 0x1fff) != 0 || ihl < 20) return;
        src = ip + 12; alen = 4; tcp = ip + ihl;
        iplen = be16(ip + 2) > ihl ? be16(ip + 2) - ihl : 0;
    } else if ((ip[0] >> 4) == 6) {
        if (ip[6] != 6) return;
        src = ip + 8; alen = 16; tcp = ip + 40; iplen = be16(ip + 4);
    } else {
        return;
    }
    if (tcp + 20 > p->data + p->caplen) return;
    uint16_t sport = be16(tcp);
    uint32_t seq = be32(tcp + 4), ack = be32(tcp + 8), doff = (tcp[12] >> 4) * 4u;
    uint8_t flags = tcp[13];
    uint32_t len = iplen > doff ? iplen - doff : 0;
    struct conn *c = lookup(p->flow_hash, src, alen, sport);
    if (!c) return;
    int d = (c->orig_port == sport && memcmp(c->orig, src, (size_t)alen) == 0) ? 0 : 1;
    uint32_t end = seq + len + ((flags & 0x02) ? 1 : 0) + ((flags & 0x01) ? 1 : 0);
    if (!c->seen[d]) { c->seen[d] = 1; c->next[d] = end; }
    else if (!after(seq, c->next[d]) && after(end, c->next[d])) c->next[d] = end; /* contiguous */
    if (flags & 0x10) {                             /* ACK: does it cover data we never saw? */
        acks++;
        if (c->seen[!d] && after(ack, c->next[!d])) { gaps++; c->next[!d] = ack; }
    }
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s NAME:K [RUN_DIR]\n", argv[0]); return 1; }
    char err[LB_WORKER_ERRBUF_SIZE];
    struct lb_worker_options opts;
    memset(&opts, 0, sizeof opts);
    opts.run_dir = argc > 2 ? argv[2] : NULL;  /* NULL: $LB_RUN_DIR or the default */
    opts.wait_ms = 60000;                       /* lb may start after us */
    opts.nap_us = 0;                            /* 0: nap up to 10 ms while traffic flows; -1: woken at once */
    lb_worker_t *w = lb_worker_open_opts(argv[1], &opts, err);
    if (!w) { fprintf(stderr, "%s (errno %d)\n", err, errno); return 1; }
    struct lb_worker_info info;
    if (lb_worker_info(w, &info) == 0)
        fprintf(stderr, "attached to %s:%u (ring %u of %u, %u lane(s), snaplen %u, lb pid %d)\n", info.group,
                info.ring, info.ring + 1, info.ring_count, info.lanes, info.max_caplen, info.producer_pid);

    struct lb_worker_packet pkts[256];
    uint64_t processed = 0, bytes = 0;
    int n, status = 0;
    while ((n = lb_worker_next_batch(w, pkts, 256, 100)) >= 0) {
        for (int i = 0; i < n; i++) { analyze(&pkts[i]); bytes += pkts[i].caplen; }
        processed += (uint64_t)n;
        /* report before releasing: lb may print its final stats as soon as all is released */
        lb_worker_report(w, processed, gaps, acks);
        lb_worker_release(w);
    }
    if (n == LB_WORKER_GONE) { fprintf(stderr, "%s: lb went away\n", argv[1]); status = 2; }
    else if (n != LB_WORKER_EOS) { fprintf(stderr, "%s: error %d\n", argv[1], n); status = 2; }
    lb_worker_report(w, processed, gaps, acks);
    printf("ring %s processed %llu gaps %llu acks %llu bytes %llu\n", argv[1],
           (unsigned long long)processed, (unsigned long long)gaps, (unsigned long long)acks,
           (unsigned long long)bytes);
    lb_worker_close(w);
    return status;
}
