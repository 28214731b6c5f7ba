/*
 * lb_worker_shunt.c -- an analyzer that stops reading a connection once it has seen enough of
 * it: after BYTES of TCP payload it asks lb to shunt the flow (lb_worker_shunt), so lb stops
 * sending it to this group's workers; the connection's SYN, FIN and RST still arrive.
 *
 *     cc -O2 -o lb_worker_shunt lb_worker_shunt.c $(pkg-config --cflags --libs lbworker)
 *     ./lb_worker_shunt zeek:3 BYTES [RUN_DIR]
 *
 * Prints at the end:  ring zeek:3 packets P shunted S refused R
 * Exit status: 0 at end of stream, 1 if attaching failed, 2 if lb went away mid-stream.
 */
#include <lb_worker.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Payload bytes per connection, keyed by lb's flow hash (the same for both directions). */
struct flow { uint64_t hash; uint64_t bytes; uint8_t used, shunted; };
#define FLOWS 65536u
static struct flow flows[FLOWS];

static struct flow *lookup(uint64_t hash) {
    for (uint32_t i = 0; i < 8; i++) {
        struct flow *f = &flows[(hash + i) & (FLOWS - 1)];
        if (f->used && f->hash == hash) return f;
        if (!f->used) { f->used = 1; f->hash = hash; return f; }
    }
    return NULL;
}

/* TCP payload bytes of a packet (0 for anything else). */
static uint32_t tcp_payload(const struct lb_worker_packet *p) {
    if (p->l3_off == 0xffff || p->l3_off + 40u > p->caplen) return 0;
    const uint8_t *ip = p->data + p->l3_off;
    uint32_t total, hl;
    if ((ip[0] >> 4) == 4) {
        if (ip[9] != 6) return 0;
        total = (uint32_t)(ip[2] << 8 | ip[3]);
        hl = (ip[0] & 15u) * 4u;
    } else if ((ip[0] >> 4) == 6) {
        if (ip[6] != 6) return 0;
        total = 40u + (uint32_t)(ip[4] << 8 | ip[5]);
        hl = 40;
    } else {
        return 0;
    }
    if (p->l3_off + hl + 13u > p->caplen) return 0;
    uint32_t thl = (uint32_t)(ip[hl + 12] >> 4) * 4u;
    return total > hl + thl ? total - hl - thl : 0;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: %s NAME:K BYTES [RUN_DIR]\n", argv[0]); return 1; }
    uint64_t limit = strtoull(argv[2], NULL, 10);
    char err[LB_WORKER_ERRBUF_SIZE];
    struct lb_worker_options o;
    memset(&o, 0, sizeof o);
    o.run_dir = argc > 3 ? argv[3] : NULL;
    o.wait_ms = 30000;
    lb_worker_t *w = lb_worker_open_opts(argv[1], &o, err);
    if (!w) { fprintf(stderr, "lb_worker_shunt: %s\n", err); return 1; }
    static struct lb_worker_packet pkts[256];
    uint64_t packets = 0, shunted = 0, refused = 0;
    int status = 0;
    for (;;) {
        int n = lb_worker_next_batch(w, pkts, 256, 1000);
        if (n == 0) continue;
        if (n == LB_WORKER_EOS) break;
        if (n < 0) { status = 2; break; }
        for (int i = 0; i < n; i++) {
            const struct lb_worker_packet *p = &pkts[i];
            packets++;
            uint32_t payload = tcp_payload(p);
            struct flow *f = payload ? lookup(p->flow_hash) : NULL;
            if (!f || f->shunted) continue;
            f->bytes += payload;
            if (f->bytes >= limit) {
                /* enough of this one: both directions, until 60 s without a packet */
                int rc = lb_worker_shunt(w, p, 0, 60.0, 0.0);
                if (rc == 0) shunted++; else { refused++; fprintf(stderr, "shunt: %s\n", strerror(-rc)); }
                f->shunted = 1;
            }
        }
        lb_worker_report(w, packets, 0, 0);
        lb_worker_release(w);
    }
    struct lb_worker_info info;
    lb_worker_info(w, &info);
    printf("ring %s:%u packets %llu shunted %llu refused %llu\n", info.group, info.ring,
           (unsigned long long)packets, (unsigned long long)shunted, (unsigned long long)refused);
    lb_worker_close(w);
    return status;
}
