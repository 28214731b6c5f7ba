#define _GNU_SOURCE
#include "lb_shim_forward.h"
#include "sockbuf.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

int lb_shim_forward_socket(int ipv6, const uint8_t *addr, int sndbuf) {
    int fd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP);
    if (fd < 0) return -1;
    if (sndbuf > 0 && lb_shim_set_sndbuf(fd, sndbuf) != 0) goto fail;
    if (ipv6) {
        int off = 6;                 /* the kernel fills the UDP checksum (mandatory in IPv6) */
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_CHECKSUM, &off, sizeof off) != 0) goto fail;
        int frag = IPV6_PMTUDISC_DONT;
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &frag, sizeof frag) != 0) goto fail;
        struct sockaddr_in6 to;
        memset(&to, 0, sizeof to);
        to.sin6_family = AF_INET6;
        memcpy(&to.sin6_addr, addr, 16);
        if (connect(fd, (struct sockaddr *)&to, sizeof to) != 0) goto fail;
    } else {
        int frag = IP_PMTUDISC_DONT;  /* datagrams over the MTU are fragmented, not refused */
        if (setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &frag, sizeof frag) != 0) goto fail;
        struct sockaddr_in to;
        memset(&to, 0, sizeof to);
        to.sin_family = AF_INET;
        memcpy(&to.sin_addr, addr, 4);
        if (connect(fd, (struct sockaddr *)&to, sizeof to) != 0) goto fail;
    }
    return fd;
fail:
    return lb_shim_close_failed(fd);
}

int lb_shim_forward_path_mtu(int fd, int ipv6) {
    int mtu = 0;
    socklen_t len = sizeof mtu;
    if (getsockopt(fd, ipv6 ? IPPROTO_IPV6 : IPPROTO_IP, ipv6 ? IPV6_MTU : IP_MTU, &mtu, &len) != 0) return -1;
    return mtu;
}

ssize_t lb_shim_send_to(int fd, const void *bytes, size_t count, const void *name, unsigned namelen) {
    ssize_t n;
    do {
        n = sendto(fd, bytes, count, MSG_DONTWAIT, (const struct sockaddr *)name, (socklen_t)namelen);
    } while (n < 0 && errno == EINTR);
    return n;
}
