/*
 * probe.c -- a small pcap program for liblbpcap's tests: it drives the live-capture API the
 * way the analyzers do (their read loops, their readiness checks, their error paths) and
 * prints what it saw, one "key=value" per line, for the test to check. It is an ordinary
 * libpcap program: it knows nothing of lb (the tests preload liblbpcap into it).
 *
 *   probe api DEVICE                     every configuration call, the error paths, close
 *   probe read DEVICE MODE OUT [FILTER]  read until the stream ends; MODE: loop, dispatch,
 *                                        next_ex, next, select, poll, epoll; OUT: a pcap file
 *   probe break DEVICE                   pcap_loop on an idle ring, pcap_breakloop from SIGALRM
 *   probe timeout DEVICE MS              a blocking pcap_dispatch on an idle ring returns 0
 *                                        after the read timeout
 *
 * Built by the tests: cc -O1 -o probe probe.c -lpcap
 */
#include <errno.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

static pcap_t *handle;
static int fcntl_ok(int fd);
static pcap_dumper_t *dumper;
static long packets;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_packet(u_char *user, const struct pcap_pkthdr *h, const u_char *bytes) {
    (void)user;
    pcap_dump((u_char *)dumper, h, bytes);
    packets++;
}

static pcap_t *open_device(const char *device, int nonblock, int timeout_ms) {
    char err[PCAP_ERRBUF_SIZE] = "";
    pcap_t *p = pcap_create(device, err);
    if (p == NULL) {
        printf("create_error=%s\n", err);
        exit(3);
    }
    pcap_set_snaplen(p, 65535);
    pcap_set_promisc(p, 1);
    pcap_set_timeout(p, timeout_ms);
    pcap_set_buffer_size(p, 1 << 22);
    pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_MICRO);
    int r = pcap_activate(p);
    if (r < 0) {
        printf("activate=%d\nactivate_error=%s\n", r, pcap_geterr(p));
        pcap_close(p);
        exit(3);
    }
    if (nonblock && pcap_setnonblock(p, 1, err) != 0) {
        printf("setnonblock_error=%s\n", err);
        exit(3);
    }
    return p;
}

static int api(const char *device) {
    char err[PCAP_ERRBUF_SIZE] = "";
    pcap_t *p = pcap_create(device, err);
    if (p == NULL) {
        printf("create_error=%s\n", err);
        return 3;
    }
    printf("snapshot_before=%d\n", pcap_snapshot(p));
    printf("set_snaplen=%d\n", pcap_set_snaplen(p, 2000));
    printf("set_tstamp_precision_nano=%d\n", pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO));
    printf("set_tstamp_type_adapter=%d\n", pcap_set_tstamp_type(p, PCAP_TSTAMP_ADAPTER));
    printf("set_immediate=%d\n", pcap_set_immediate_mode(p, 1));
    printf("can_set_rfmon=%d\n", pcap_can_set_rfmon(p));
    printf("activate=%d\n", pcap_activate(p));
    printf("activate_again=%d\n", pcap_activate(p));
    printf("set_snaplen_after=%d\n", pcap_set_snaplen(p, 100));
    printf("snapshot=%d\n", pcap_snapshot(p));
    printf("tstamp_precision=%d\n", pcap_get_tstamp_precision(p));
    printf("datalink=%d\n", pcap_datalink(p));
    int *dlts = NULL;
    int n = pcap_list_datalinks(p, &dlts);
    printf("datalinks=%d first=%d\n", n, n > 0 ? dlts[0] : -1);
    pcap_free_datalinks(dlts);
    printf("set_datalink_en10mb=%d\n", pcap_set_datalink(p, DLT_EN10MB));
    printf("set_datalink_raw=%d\n", pcap_set_datalink(p, DLT_RAW));
    printf("set_datalink_raw_error=%s\n", pcap_geterr(p));
    int *types = NULL;
    n = pcap_list_tstamp_types(p, &types);
    printf("tstamp_types=%d first=%s\n", n, n > 0 ? pcap_tstamp_type_val_to_name(types[0]) : "-");
    pcap_free_tstamp_types(types);
    printf("setdirection_inout=%d\n", pcap_setdirection(p, PCAP_D_INOUT));
    printf("setdirection_in=%d\n", pcap_setdirection(p, PCAP_D_IN));
    printf("setdirection_in_error=%s\n", pcap_geterr(p));
    printf("getnonblock=%d\n", pcap_getnonblock(p, err));
    printf("setnonblock=%d\n", pcap_setnonblock(p, 1, err));
    printf("getnonblock_after=%d\n", pcap_getnonblock(p, err));
    int fd = pcap_get_selectable_fd(p);
    printf("selectable_fd_valid=%d\n", fd >= 0 && fcntl_ok(fd));
    printf("fileno_same=%d\n", pcap_fileno(p) == fd);
    printf("required_select_timeout_null=%d\n", pcap_get_required_select_timeout(p) == NULL);
    struct bpf_program prog;
    printf("compile=%d\n", pcap_compile(p, &prog, "tcp port 80", 1, PCAP_NETMASK_UNKNOWN));
    printf("setfilter=%d\n", pcap_setfilter(p, &prog));
    pcap_freecode(&prog);
    printf("compile_bad=%d\n", pcap_compile(p, &prog, "tcp port eighty", 1, PCAP_NETMASK_UNKNOWN));
    printf("compile_bad_error=%s\n", pcap_geterr(p));
    const u_char frame[60] = { 0 };
    printf("inject=%d\n", pcap_inject(p, frame, sizeof frame));
    printf("inject_error=%s\n", pcap_geterr(p));
    printf("sendpacket=%d\n", pcap_sendpacket(p, frame, sizeof frame));
    struct pcap_stat st;
    printf("stats=%d\n", pcap_stats(p, &st));
    struct pcap_pkthdr *hdr;
    const u_char *data;
    printf("next_ex_nonblock=%d\n", pcap_next_ex(p, &hdr, &data));
    bpf_u_int32 net = 1, mask = 1;
    int ln = pcap_lookupnet(device, &net, &mask, err);
    printf("lookupnet=%d net=%u mask=%u\n", ln, net, mask);
    pcap_close(p);
    printf("closed=1\n");
    return 0;
}

static int read_until_end(const char *device, const char *mode, const char *out, const char *filter) {
    int nonblock = strcmp(mode, "select") == 0 || strcmp(mode, "poll") == 0 || strcmp(mode, "epoll") == 0;
    handle = open_device(device, nonblock, 1000);
    if (filter != NULL) {
        struct bpf_program prog;
        if (pcap_compile(handle, &prog, filter, 1, PCAP_NETMASK_UNKNOWN) != 0 || pcap_setfilter(handle, &prog) != 0) {
            printf("filter_error=%s\n", pcap_geterr(handle));
            return 3;
        }
        pcap_freecode(&prog);
    }
    dumper = pcap_dump_open(handle, out);
    if (dumper == NULL) {
        printf("dump_error=%s\n", pcap_geterr(handle));
        return 3;
    }
    int r = 0, idle_timeouts = 0, wakeups = 0, empty_wakeups = 0;
    int fd = pcap_get_selectable_fd(handle);
    int ep = -1;
    if (strcmp(mode, "epoll") == 0) {
        ep = epoll_create1(0);
        struct epoll_event ev = { .events = EPOLLIN };
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    double deadline = now() + 120;
    if (strcmp(mode, "loop") == 0) {
        r = pcap_loop(handle, -1, on_packet, NULL);
    } else if (strcmp(mode, "dispatch") == 0) {
        while ((r = pcap_dispatch(handle, 64, on_packet, NULL)) >= 0 && now() < deadline) {
            /* at a capture's end pcap_dispatch returns 0 for good; a live ring returns 0 on a
             * timeout too: the stream's end is told by next_ex below */
            if (r == 0) {
                struct pcap_pkthdr *h;
                const u_char *d;
                int e = pcap_next_ex(handle, &h, &d);
                if (e == 1) on_packet(NULL, h, d);
                else if (e == PCAP_ERROR_BREAK) { r = 0; break; }
                else if (e < 0) { r = e; break; }
            }
        }
    } else if (strcmp(mode, "next_ex") == 0 || nonblock) {
        for (;;) {
            if (now() > deadline) { r = -99; break; }
            if (nonblock) {
                int ready = 0;
                if (strcmp(mode, "select") == 0) {
                    fd_set set;
                    FD_ZERO(&set);
                    FD_SET(fd, &set);
                    struct timeval tv = { 2, 0 };
                    ready = select(fd + 1, &set, NULL, NULL, &tv);
                } else if (strcmp(mode, "poll") == 0) {
                    struct pollfd pfd = { .fd = fd, .events = POLLIN };
                    ready = poll(&pfd, 1, 2000);
                } else {
                    struct epoll_event ev;
                    ready = epoll_wait(ep, &ev, 1, 2000);
                }
                if (ready == 0) { idle_timeouts++; }
                else wakeups++;
            }
            struct pcap_pkthdr *h;
            const u_char *d;
            int got = 0;
            while ((r = pcap_next_ex(handle, &h, &d)) == 1) {
                on_packet(NULL, h, d);
                got++;
                if (nonblock && got == 1000) break;   /* back to the readiness check with packets waiting */
            }
            if (nonblock && got == 0 && r == 0) empty_wakeups++;
            if (r < 0) break;
            r = 0;
        }
        if (r == PCAP_ERROR_BREAK) r = 0;
    } else if (strcmp(mode, "next") == 0) {
        struct pcap_pkthdr h;
        const u_char *d;
        int quiet = 0;
        /* pcap_next cannot tell the end from a timeout: stop after 3 s of nothing */
        while (quiet < 3) {
            if ((d = pcap_next(handle, &h)) != NULL) {
                on_packet(NULL, &h, d);
                quiet = 0;
            } else {
                quiet++;
            }
        }
    }
    struct pcap_stat st;
    memset(&st, 0, sizeof st);
    pcap_stats(handle, &st);
    pcap_dump_close(dumper);
    printf("result=%d\npackets=%ld\nidle_timeouts=%d\nwakeups=%d\nempty_wakeups=%d\n", r, packets, idle_timeouts, wakeups, empty_wakeups);
    printf("ps_recv=%u\nps_drop=%u\nps_ifdrop=%u\n", st.ps_recv, st.ps_drop, st.ps_ifdrop);
    if (r < 0) printf("error=%s\n", pcap_geterr(handle));
    pcap_close(handle);
    return r < 0 ? 1 : 0;
}

static void on_alarm(int sig) {
    (void)sig;
    pcap_breakloop(handle);
}

static int breakloop(const char *device) {
    handle = open_device(device, 0, 0);
    signal(SIGALRM, on_alarm);
    sigset_t set;                       /* a test runner may have started us with it blocked */
    sigemptyset(&set);
    sigaddset(&set, SIGALRM);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    alarm(1);
    double t0 = now();
    int r = pcap_loop(handle, -1, on_packet, NULL);
    printf("loop=%d\nseconds=%.2f\n", r, now() - t0);
    alarm(1);
    t0 = now();
    r = pcap_dispatch(handle, -1, on_packet, NULL);
    printf("dispatch=%d\nseconds2=%.2f\n", r, now() - t0);
    pcap_close(handle);
    return 0;
}

static int timeout(const char *device, int ms) {
    handle = open_device(device, 0, ms);
    double t0 = now();
    int r = pcap_dispatch(handle, 10, on_packet, NULL);
    printf("dispatch=%d\nseconds=%.3f\n", r, now() - t0);
    pcap_close(handle);
    return 0;
}

static int fcntl_ok(int fd) { return fcntl(fd, F_GETFD) >= 0; }

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 3 && strcmp(argv[1], "api") == 0) return api(argv[2]);
    if (argc >= 5 && strcmp(argv[1], "read") == 0) return read_until_end(argv[2], argv[3], argv[4], argc > 5 ? argv[5] : NULL);
    if (argc >= 3 && strcmp(argv[1], "break") == 0) return breakloop(argv[2]);
    if (argc >= 4 && strcmp(argv[1], "timeout") == 0) return timeout(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: probe api|read|break|timeout DEVICE ...\n");
    return 2;
}
