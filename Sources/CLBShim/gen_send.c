#define _GNU_SOURCE
#include "lb_shim_gen.h"
#include "sockbuf.h"

#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <string.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef PACKET_QDISC_BYPASS
#define PACKET_QDISC_BYPASS 20
#endif

int lb_shim_gen_packet_socket(int ifindex, int qdisc_bypass, int sndbuf) {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (qdisc_bypass) {
        int one = 1;
        if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) != 0) goto fail;
    }
    if (sndbuf > 0 && lb_shim_set_sndbuf(fd, sndbuf) != 0) goto fail;
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_ifindex = ifindex;
    sll.sll_protocol = 0;            /* bound for sending only: no packets are queued to us */
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) != 0) goto fail;
    return fd;
fail:
    return lb_shim_close_failed(fd);
}

int lb_shim_set_sndbuf(int fd, int bytes) {
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof bytes) == 0) return 0;
    return setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
}

int lb_shim_close_failed(int fd) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}

int lb_shim_gen_send_batch(int sock, const uint8_t *base, const uint64_t *offsets,
                           const uint32_t *lens, int count) {
    if (count <= 0) return 0;
    if (count > LB_SHIM_GEN_MAX_BATCH) count = LB_SHIM_GEN_MAX_BATCH;
    struct mmsghdr msgs[LB_SHIM_GEN_MAX_BATCH];
    struct iovec iov[LB_SHIM_GEN_MAX_BATCH];
    for (int i = 0; i < count; i++) {
        iov[i].iov_base = (void *)(base + offsets[i]);
        iov[i].iov_len = lens[i];
        memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_len = 0;
    }
    int n;
    do {
        n = sendmmsg(sock, msgs, (unsigned)count, 0);
    } while (n < 0 && errno == EINTR);
    return n;
}

int lb_shim_gen_interface(const char *name, int *ifindex, int *mtu, int *arphrd) {
    struct ifreq ifr;
    if (strlen(name) >= IFNAMSIZ) { errno = ENODEV; return -1; }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    int rc = ioctl(fd, SIOCGIFINDEX, &ifr);
    if (rc == 0) {
        *ifindex = ifr.ifr_ifindex;
        rc = ioctl(fd, SIOCGIFMTU, &ifr);
    }
    if (rc == 0) {
        *mtu = ifr.ifr_mtu;
        rc = ioctl(fd, SIOCGIFHWADDR, &ifr);
    }
    if (rc == 0) *arphrd = ifr.ifr_hwaddr.sa_family;
    int e = errno;
    close(fd);
    errno = e;
    return rc == 0 ? 0 : -1;
}

static volatile sig_atomic_t lb_shim_gen_stop;

static void lb_shim_gen_on_signal(int sig) {
    (void)sig;
    lb_shim_gen_stop = 1;
}

int lb_shim_gen_install_stop_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = lb_shim_gen_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    if (sigaction(SIGINT, &sa, NULL) != 0) return -1;
    return sigaction(SIGTERM, &sa, NULL);
}

int lb_shim_gen_stop_requested(void) { return lb_shim_gen_stop != 0; }

int lb_shim_gen_sleep_until(uint64_t deadline_ns) {
    struct timespec ts;
    ts.tv_sec = (time_t)(deadline_ns / 1000000000u);
    ts.tv_nsec = (long)(deadline_ns % 1000000000u);
    return clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

int lb_shim_gen_set_timer_slack(unsigned long nanos) {
    return prctl(PR_SET_TIMERSLACK, nanos, 0, 0, 0);
}
