/*
 * udpsend -- VXLAN traffic for the udp:: benchmark: mirrored 60-byte Ethernet/IPv4/UDP+TCP
 * frames of FLOWS inner flows (both directions), each wrapped in VXLAN (VNI 1..16) and sent as
 * a UDP datagram, paced to RATE datagrams per second for SECONDS, from SOCKETS source ports (a
 * mirror source spreads its outer source port by inner flow, as AWS does: per direction).
 *
 *   udpsend -d 10.0.0.2 -p 4789 -r 500000 -t 5 [-f 4096] [-s 64]
 *
 * Prints "sent N" (datagrams handed to the kernel) and "send_errors N" at the end.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PAYLOAD 68   /* 8 VXLAN + 14 Ethernet + 20 IPv4 + 8 UDP + 18 bytes */
#define BATCH 32

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static uint16_t csum(const uint8_t *p, int n) {
    uint32_t s = 0;
    for (int i = 0; i + 1 < n; i += 2) s += (uint32_t)p[i] << 8 | p[i + 1];
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

int main(int argc, char **argv) {
    const char *dst = "127.0.0.1";
    int port = 4789, flows = 4096, nsock = 64;
    double rate = 100000, seconds = 5;
    int c;
    while ((c = getopt(argc, argv, "d:p:r:t:f:s:")) != -1) {
        switch (c) {
        case 'd': dst = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 't': seconds = atof(optarg); break;
        case 'f': flows = atoi(optarg); break;
        case 's': nsock = atoi(optarg); break;
        default: fprintf(stderr, "usage: udpsend -d ADDR -p PORT -r RATE -t SECONDS [-f FLOWS] [-s SOCKETS]\n"); return 2;
        }
    }
    if (flows < 1 || nsock < 1 || rate <= 0) return 2;
    int n = flows * 2;
    uint8_t *pkts = calloc((size_t)n, PAYLOAD);
    for (int i = 0; i < n; i++) {
        uint8_t *p = pkts + (size_t)i * PAYLOAD;
        int f = i / 2, rev = i & 1;
        p[0] = 0x08;
        uint32_t vni = 1 + (uint32_t)(f % 16);
        p[4] = vni >> 16; p[5] = vni >> 8; p[6] = vni;
        uint8_t *e = p + 8;
        memcpy(e, "\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00", 14);
        uint8_t *ip = e + 14;
        uint32_t a = 0x0a000000u | (uint32_t)(f & 0xffff), b = 0x0a100000u | (uint32_t)((f * 7) & 0xffff);
        uint32_t s = rev ? b : a, d = rev ? a : b;
        ip[0] = 0x45; ip[3] = 46; ip[8] = 64; ip[9] = 17;
        ip[12] = s >> 24; ip[13] = s >> 16; ip[14] = s >> 8; ip[15] = s;
        ip[16] = d >> 24; ip[17] = d >> 16; ip[18] = d >> 8; ip[19] = d;
        uint16_t ck = csum(ip, 20); ip[10] = ck >> 8; ip[11] = ck;
        uint8_t *u = ip + 20;
        uint16_t sp = 10000 + (uint16_t)(f % 50000), dp = 53;
        if (rev) { uint16_t t = sp; sp = dp; dp = t; }
        u[0] = sp >> 8; u[1] = sp; u[2] = dp >> 8; u[3] = dp; u[5] = 26;
    }
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    if (inet_pton(AF_INET, dst, &to.sin_addr) != 1) { fprintf(stderr, "bad address %s\n", dst); return 2; }
    int *fds = calloc((size_t)nsock, sizeof(int));
    for (int i = 0; i < nsock; i++) {
        fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
        int big = 4 << 20;
        setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
        if (connect(fds[i], (struct sockaddr *)&to, sizeof to) != 0) { perror("connect"); return 1; }
    }
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    memset(msgs, 0, sizeof msgs);
    uint64_t sent = 0, errors = 0, next = 0;
    uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9);
    for (;;) {
        uint64_t t = now_ns();
        if (t >= end) break;
        uint64_t due = (uint64_t)((double)(t - start) * rate / 1e9);
        if (sent + errors >= due) {
            struct timespec ts = { 0, 200000 };
            nanosleep(&ts, NULL);
            continue;
        }
        uint64_t want = due - sent - errors;
        if (want > BATCH) want = BATCH;
        /* one batch goes through the socket of its first packet's flow direction */
        int sock = (int)((next * 2654435761u >> 7) % (uint64_t)nsock);
        for (uint64_t k = 0; k < want; k++) {
            iov[k].iov_base = pkts + (size_t)((next + k) % (uint64_t)n) * PAYLOAD;
            iov[k].iov_len = PAYLOAD;
            msgs[k].msg_hdr.msg_iov = &iov[k];
            msgs[k].msg_hdr.msg_iovlen = 1;
        }
        int r = sendmmsg(fds[sock], msgs, (unsigned)want, 0);
        if (r < 0) { errors += want; continue; }
        sent += (uint64_t)r;
        if ((uint64_t)r < want) errors += want - (uint64_t)r;
        next += want;
    }
    printf("sent %llu\nsend_errors %llu\n", (unsigned long long)sent, (unsigned long long)errors);
    return 0;
}
