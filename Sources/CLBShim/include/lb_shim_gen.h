/*
 * lb_shim_gen.h -- the transmit side of an AF_PACKET socket, for `lb gen -i IFACE` (the
 * traffic generator). Separate from lb_shim.h so that it merges cleanly with the receive-side
 * ingress code. Every symbol carries the lb_shim_gen_ prefix; each returns what the underlying
 * call returns (-1 and errno on failure) unless its comment says otherwise.
 */
#ifndef LB_SHIM_GEN_H
#define LB_SHIM_GEN_H

#include <stdint.h>
#include <stddef.h>

/* The most frames one lb_shim_gen_send_batch call takes (its mmsghdr array lives on the stack). */
#define LB_SHIM_GEN_MAX_BATCH 256

/* An AF_PACKET SOCK_RAW socket that only sends: protocol 0 (it receives nothing), bound to
 * `ifindex`, SOCK_CLOEXEC. With qdisc_bypass non-zero, PACKET_QDISC_BYPASS is set (frames go
 * straight to the driver, as pktgen and trafgen do). sndbuf > 0 sets SO_SNDBUFFORCE (falling
 * back to SO_SNDBUF). */
int lb_shim_gen_packet_socket(int ifindex, int qdisc_bypass, int sndbuf);

/* Sends up to `count` (at most LB_SHIM_GEN_MAX_BATCH) frames with one sendmmsg(2): frame i is
 * `lens[i]` bytes at `base + offsets[i]`. Returns how many were sent (the kernel stops at the
 * first one it refuses), or -1 and errno when the first one was refused. EINTR is retried. */
int lb_shim_gen_send_batch(int sock, const uint8_t *base, const uint64_t *offsets,
                           const uint32_t *lens, int count);

/* The interface's index, MTU and link-layer header length (ARPHRD_ETHER gives 14), or -1 and
 * errno (ENODEV when there is no such interface). */
int lb_shim_gen_interface(const char *name, int *ifindex, int *mtu, int *arphrd);

/* Installs SIGINT and SIGTERM handlers (without SA_RESTART, so a sleep ends early) that set a
 * flag read by lb_shim_gen_stop_requested(). */
int lb_shim_gen_install_stop_handlers(void);
int lb_shim_gen_stop_requested(void);

/* Sleeps until CLOCK_MONOTONIC reaches `deadline_ns` (clock_nanosleep, TIMER_ABSTIME). Returns 0,
 * or EINTR when a signal ended the sleep. */
int lb_shim_gen_sleep_until(uint64_t deadline_ns);

/* prctl(PR_SET_TIMERSLACK): the kernel may delay a timer by this much (default 50 us). */
int lb_shim_gen_set_timer_slack(unsigned long nanos);

#endif
