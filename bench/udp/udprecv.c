/*
 * udprecv -- the peer for the udp:: benchmark: N receiver processes on one port with
 * SO_REUSEPORT, each doing non-blocking recvmmsg (64 at a time, poll when idle), checking the
 * VXLAN header and reading the inner frame: what Zeek's UDP packet source does before Zeek's
 * analysis. Runs until SIGTERM/SIGINT, then prints, summed over the processes:
 *
 *   received N      datagrams with a valid VXLAN header
 *   invalid N       others
 *   kernel_drops N  the sockets' drop counts (SO_RXQ_OVFL)
 *   cpu_seconds X   user + system CPU of the receivers
 *
 *   udprecv -a 10.0.0.2 -p 4789 -n 2 [-b 67108864]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define VLEN 64
#define SLOT 9216

static volatile sig_atomic_t stop;
static void on_signal(int s) { (void)s; stop = 1; }

int main(int argc, char **argv) {
    const char *addr = "0.0.0.0";
    int port = 4789, n = 1, rcvbuf = 64 << 20, c;
    while ((c = getopt(argc, argv, "a:p:n:b:")) != -1) {
        switch (c) {
        case 'a': addr = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'n': n = atoi(optarg); break;
        case 'b': rcvbuf = atoi(optarg); break;
        default: fprintf(stderr, "usage: udprecv -a ADDR -p PORT -n PROCESSES [-b RCVBUF]\n"); return 2;
        }
    }
    int pipes[64][2];
    pid_t pids[64];
    if (n < 1 || n > 64) return 2;
    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* sockets are opened in the parent, before the fork, so every one has joined the group
       when "ready" is printed */
    int fds[64];
    for (int i = 0; i < n; i++) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        inet_pton(AF_INET, addr, &a.sin_addr);
        int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0), one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) != 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("bind"); return 1; }
        fds[i] = fd;
    }
    for (int i = 0; i < n; i++) {
        if (pipe(pipes[i]) != 0) return 1;
        if ((pids[i] = fork()) == 0) {
            int fd = fds[i];
            static uint8_t bufs[VLEN][SLOT];
            static char ctl[VLEN][64];
            struct mmsghdr m[VLEN];
            struct iovec iov[VLEN];
            uint64_t got = 0, bad = 0, touch = 0;
            uint32_t drops = 0;
            while (!stop) {
                for (int k = 0; k < VLEN; k++) {
                    iov[k] = (struct iovec){ bufs[k], SLOT };
                    m[k].msg_hdr = (struct msghdr){ .msg_iov = &iov[k], .msg_iovlen = 1, .msg_control = ctl[k],
                                                     .msg_controllen = sizeof ctl[k] };
                }
                int r = recvmmsg(fd, m, VLEN, MSG_DONTWAIT, NULL);
                if (r <= 0) {
                    struct pollfd p = { fd, POLLIN, 0 };
                    poll(&p, 1, 100);
                    continue;
                }
                for (int k = 0; k < r; k++) {
                    uint8_t *d = bufs[k];
                    if (m[k].msg_len < 8 + 14 || !(d[0] & 0x08)) { bad++; continue; }
                    got++;
                    touch += d[8 + 12] + d[m[k].msg_len - 1];    /* the inner frame's EtherType and last byte */
                    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m[k].msg_hdr); h; h = CMSG_NXTHDR(&m[k].msg_hdr, h))
                        if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SO_RXQ_OVFL) memcpy(&drops, CMSG_DATA(h), 4);
                }
            }
            struct rusage ru;
            getrusage(RUSAGE_SELF, &ru);
            double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
            char line[256];
            int len = snprintf(line, sizeof line, "%llu %llu %u %.6f %llu\n", (unsigned long long)got,
                               (unsigned long long)bad, drops, cpu, (unsigned long long)(touch & 1));
            if (write(pipes[i][1], line, (size_t)len) < 0) return 1;
            _exit(0);
        }
        close(pipes[i][1]);
    }
    printf("ready\n");
    fflush(stdout);
    while (!stop) pause();
    for (int i = 0; i < n; i++) kill(pids[i], SIGTERM);
    uint64_t got = 0, bad = 0, drops = 0;
    double cpu = 0;
    for (int i = 0; i < n; i++) {
        char line[256] = { 0 };
        ssize_t r = read(pipes[i][0], line, sizeof line - 1);
        unsigned long long g = 0, b = 0, t = 0;
        unsigned d = 0;
        double u = 0;
        if (r > 0 && sscanf(line, "%llu %llu %u %lf %llu", &g, &b, &d, &u, &t) >= 4) {
            got += g; bad += b; drops += d; cpu += u;
        }
        wait(NULL);
    }
    printf("received %llu\ninvalid %llu\nkernel_drops %llu\ncpu_seconds %.6f\n", (unsigned long long)got,
           (unsigned long long)bad, (unsigned long long)drops, cpu);
    return 0;
}
