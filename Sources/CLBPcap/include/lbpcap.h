/*
 * lbpcap.h -- liblbpcap: lb's rings as capture devices of the system's libpcap.
 *
 * liblbpcap.so is loaded into an unmodified pcap program with LD_PRELOAD (or `lb exec`):
 *
 *     LD_PRELOAD=liblbpcap.so tcpdump -i lb:zeek:3 -w part3.pcap
 *     lb exec -- tshark -i lbtap:zeek:3
 *
 * It claims two kinds of device names and leaves every other device, and every capture file,
 * to the real libpcap:
 *
 *     lb:GROUP:K      consume ring K of group GROUP (one consumer per ring; zero copy)
 *     lbtap:GROUP:K   watch ring K without consuming it (read-only, like `lb tap`)
 *
 * Environment:
 *     LB_RUN_DIR      where lb's control sockets are (as for lb; default /run/lb for root,
 *                     $XDG_RUNTIME_DIR/lb, /tmp/lb-UID)
 *     LB_USER         the user lb runs as (consumers refuse sockets and rings of other users)
 *     LBPCAP_WAIT     seconds to wait for lb to serve the ring at activation (default 0: fail
 *                     at once with a libpcap error when no lb serves it)
 *     LBPCAP_DEBUG    a file to append diagnostics to (the library never writes to the
 *                     program's stdout or stderr)
 *
 * docs/analyzers.md explains how each analyzer runs on rings and how its loss figures map to
 * lb's counters. The library links only libc and the system's libpcap.
 */
#ifndef LBPCAP_H
#define LBPCAP_H

#define LBPCAP_VERSION "1.0"

/* The library's version string (to check that the preload took: dlsym(RTLD_DEFAULT, ...)). */
const char *lbpcap_version(void);

#endif
