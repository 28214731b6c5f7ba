/*
 * lb_shim.h -- C entry points that Swift cannot call directly: variadic functions (fcntl, ioctl,
 * syscall), function-like macros (CMSG_*), and GNU extensions that the Glibc module hides.
 * Every symbol carries the lb_shim_ prefix. Each returns what the underlying call returns
 * (-1 and errno on failure) unless its comment says otherwise.
 */
#ifndef LB_SHIM_H
#define LB_SHIM_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

/* futex(2) on a shared (not private) 32-bit word. timeout_ns < 0 waits forever. */
int lb_shim_futex_wait(const uint32_t *addr, uint32_t expected, int64_t timeout_ns);
int lb_shim_futex_wake(const uint32_t *addr, int count);

/* eventfd(2) with EFD_NONBLOCK | EFD_CLOEXEC, counter 0 (a ring's doorbell). */
int lb_shim_eventfd(void);
/* Adds 1 to an eventfd's counter (never blocks: the descriptor is non-blocking). */
int lb_shim_eventfd_ring(int fd);

/* getxattr(2) with no buffer: the size of attribute `name` of `path`, or -1 (ENODATA: none). */
long lb_shim_xattr_size(const char *path, const char *name);

/* memfd_create(2) with MFD_CLOEXEC | MFD_ALLOW_SEALING. */
int lb_shim_memfd_create(const char *name);
/* fcntl(F_ADD_SEALS): F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, plus F_SEAL_FUTURE_WRITE when
 * future_write is non-zero (existing writable mappings keep working; new ones are refused). */
int lb_shim_seal(int fd, int future_write);
int lb_shim_get_seals(int fd);

int lb_shim_set_nonblock(int fd, int on);
int lb_shim_set_cloexec(int fd);

/* Sends `len` bytes and `nfds` descriptors (SCM_RIGHTS) on a connected unix socket. */
ssize_t lb_shim_send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds);
/* Receives up to `len` bytes and up to `maxfds` descriptors; *nfds gets how many arrived.
 * Descriptors are received with MSG_CMSG_CLOEXEC. Truncated control data closes what came. */
ssize_t lb_shim_recv_with_fds(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds);

/* accept4(2) with SOCK_CLOEXEC | SOCK_NONBLOCK. */
int lb_shim_accept(int sock);

/* SO_PEERCRED of a connected unix socket. */
int lb_shim_peer_cred(int sock, pid_t *pid, uid_t *uid, gid_t *gid);

/* Pins the calling thread to one CPU. */
int lb_shim_pin_cpu(int cpu);

/* Sets the calling thread's name (at most 15 bytes are kept). */
void lb_shim_set_thread_name(const char *name);

/* Full memory barrier (used for the "set waiting flag, then re-check" handshakes). */
void lb_shim_fence(void);

/* Blocks the given signal in the calling thread (so that only the main thread handles it). */
int lb_shim_block_signal(int sig);

/* recvmmsg / sendmmsg (GNU extensions Swift's Glibc does not import). `msgs` points to `vlen`
 * struct mmsghdr (64 bytes each: a struct msghdr, then the unsigned msg_len). EINTR retried. */
int lb_shim_recvmmsg(int fd, void *msgs, unsigned int vlen, int flags);
int lb_shim_sendmmsg(int fd, void *msgs, unsigned int vlen, int flags);

/* Asks for the cache line at p, to be written soon (inlined: no call). */
static inline void lb_shim_prefetch(const void *p) { __builtin_prefetch(p, 1, 3); }

#include <spawn.h>
/* posix_spawn file action: close every descriptor >= low in the child. 0 or an errno. */
int lb_shim_spawn_closefrom(posix_spawn_file_actions_t *actions, int low);

#endif
