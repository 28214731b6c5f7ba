/*
 * lb_shim_forward.h -- the sending side of forwarding a group to other hosts
 * (docs/scale-out.md): a raw UDP socket that carries VXLAN with a source port per flow, and
 * sendto for answering keepalives on the udp:: input.
 */
#ifndef LB_SHIM_FORWARD_H
#define LB_SHIM_FORWARD_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

/* A raw socket for protocol UDP (SOCK_CLOEXEC), connected to `addr` (4 or 16 bytes): lb writes
 * the UDP header itself (so every flow can have its own source port) and the kernel the IP
 * header. Over-MTU datagrams are fragmented by the kernel (IP_PMTUDISC_DONT); IPv6's UDP
 * checksum is filled by the kernel (IPV6_CHECKSUM). sndbuf > 0 sets SO_SNDBUFFORCE (else
 * SO_SNDBUF). -1 and errno on failure. */
int lb_shim_forward_socket(int ipv6, const uint8_t *addr, int sndbuf);

/* The socket's path MTU (IP_MTU / IPV6_MTU of a connected socket), or -1 and errno. */
int lb_shim_forward_path_mtu(int fd, int ipv6);

/* sendto(2) without blocking; EINTR retried. */
ssize_t lb_shim_send_to(int fd, const void *bytes, size_t count, const void *name, unsigned namelen);

#endif
