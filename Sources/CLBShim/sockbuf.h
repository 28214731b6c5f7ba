/* sockbuf.h -- private to CLBShim: what the sending sockets (gen_send.c, forward_send.c) share. */
#ifndef LB_SHIM_SOCKBUF_H
#define LB_SHIM_SOCKBUF_H

/* Sets the socket's send buffer to `bytes`: SO_SNDBUFFORCE (beyond wmem_max, with
 * CAP_NET_ADMIN), else SO_SNDBUF. Returns 0, or -1 and errno. */
int lb_shim_set_sndbuf(int fd, int bytes) __attribute__((visibility("hidden")));

/* Closes `fd` keeping errno as it was; returns -1 (the failure path of a socket's setup). */
int lb_shim_close_failed(int fd) __attribute__((visibility("hidden")));

#endif
