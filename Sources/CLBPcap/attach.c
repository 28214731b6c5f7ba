/* attach.c -- device names, the run directory, and the attach handshake of
 * docs/ring-protocol.md: connect to <run-dir>/GROUP.sock, send lb_attach_request, receive
 * lb_attach_reply with the DATA, CONTROL and doorbell descriptors, check who owns them, map
 * them, and check the layout before trusting an offset. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include "lbp.h"

/* Diagnostics go to $LBPCAP_DEBUG only: the program's stdout and stderr are its own (dumpcap's
 * stderr is a protocol pipe to tshark). */
void lbp_debug(const char *fmt, ...) {
    const char *path = getenv("LBPCAP_DEBUG");
    if (path == NULL || *path == 0) return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return;
    char line[512];
    int n = snprintf(line, sizeof line, "liblbpcap[%d]: ", (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(fd, line, (size_t)n);
    (void)w;
    close(fd);
}

int lbp_claims(const char *device) {
    return device != NULL && (strncmp(device, "lb:", 3) == 0 || strncmp(device, "lbtap:", 6) == 0);
}

/* lb:GROUP:K or lbtap:GROUP:K. Group names follow lb's rule (they become file names): 1 to 31
 * of A-Z a-z 0-9 _ . -, not "." or "..". */
int lbp_parse(const char *device, int *tap, char group[LB_GROUP_NAME_MAX], uint32_t *ring, char *err) {
    const char *rest = strncmp(device, "lbtap:", 6) == 0 ? device + 6 : device + 3;
    *tap = rest == device + 6;
    const char *colon = strrchr(rest, ':');
    if (colon == NULL) {
        snprintf(err, PCAP_ERRBUF_SIZE, "%s: not a ring name; expected %s:GROUP:K, e.g. %s:zeek:3", device,
                 *tap ? "lbtap" : "lb", *tap ? "lbtap" : "lb");
        return -1;
    }
    size_t glen = (size_t)(colon - rest);
    if (glen == 0 || glen >= LB_GROUP_NAME_MAX) {
        snprintf(err, PCAP_ERRBUF_SIZE, "%s: the group name must have 1 to %u characters", device, LB_GROUP_NAME_MAX - 1);
        return -1;
    }
    for (size_t i = 0; i < glen; i++) {
        char c = rest[i];
        int ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == '.' || c == '-';
        if (!ok) {
            snprintf(err, PCAP_ERRBUF_SIZE, "%s: a group name may contain only letters, digits, '_', '.' and '-'", device);
            return -1;
        }
    }
    if ((glen == 1 && rest[0] == '.') || (glen == 2 && rest[0] == '.' && rest[1] == '.')) {
        snprintf(err, PCAP_ERRBUF_SIZE, "%s: '%.*s' is not a group name", device, (int)glen, rest);
        return -1;
    }
    const char *k = colon + 1;
    if (*k == 0 || strspn(k, "0123456789") != strlen(k) || strlen(k) > 9) {
        snprintf(err, PCAP_ERRBUF_SIZE, "%s: the ring number after the last ':' must be 0 or more", device);
        return -1;
    }
    memcpy(group, rest, glen);
    group[glen] = 0;
    *ring = (uint32_t)strtoul(k, NULL, 10);
    return 0;
}

/* As lb resolves it (RunDirectory in Sources/LBRing/RingName.swift). */
const char *lbp_run_dir(char *buf, size_t len) {
    const char *env = getenv("LB_RUN_DIR");
    if (env != NULL && *env != 0) snprintf(buf, len, "%s", env);
    else if (geteuid() == 0) snprintf(buf, len, "/run/lb");
    else if ((env = getenv("XDG_RUNTIME_DIR")) != NULL && *env != 0) snprintf(buf, len, "%s/lb", env);
    else snprintf(buf, len, "/tmp/lb-%u", (unsigned)geteuid());
    return buf;
}

/* The users whose sockets and rings are trusted: $LB_USER (name or uid), else root (and the
 * reader itself when it is not root). As OwnerCheck in Sources/LBWorker/StatsClient.swift. */
static int trusted(uid_t uid) {
    const char *u = getenv("LB_USER");
    if (u != NULL && *u != 0) {
        char *end;
        unsigned long v = strtoul(u, &end, 10);
        if (*end == 0) return uid == (uid_t)v;
        struct passwd *pw = getpwnam(u);
        return pw != NULL && pw->pw_uid == uid;
    }
    return uid == 0 || uid == geteuid();
}

static int connect_unix(const char *path) {
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    while (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (errno == EINTR) continue;
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Sends the request and receives the reply with up to `maxfds` descriptors. Returns the number
 * of descriptors, or -1 with err set. */
static int handshake(int fd, const char *group, uint32_t ring, uint16_t mode, uint32_t flags,
                     struct lb_attach_reply *reply, int *fds, int maxfds, char *err, const char *device) {
    struct lb_attach_request rq;
    memset(&rq, 0, sizeof rq);
    rq.magic = LB_ATTACH_MAGIC;
    rq.version = LB_RING_VERSION;
    rq.mode = mode;
    rq.ring = ring;
    rq.flags = flags;
    snprintf(rq.group, sizeof rq.group, "%s", group);
    if (send(fd, &rq, sizeof rq, MSG_NOSIGNAL) != (ssize_t)sizeof rq) {
        snprintf(err, PCAP_ERRBUF_SIZE, "%s: cannot send the attach request to lb: %s", device, strerror(errno));
        return -1;
    }
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    int r;
    do r = poll(&pfd, 1, 5000); while (r < 0 && errno == EINTR);
    if (r <= 0) {
        snprintf(err, PCAP_ERRBUF_SIZE, "%s: lb did not answer the attach request within 5 s", device);
        return -1;
    }
    char cbuf[CMSG_SPACE(sizeof(int) * 4)];
    struct iovec iov = { .iov_base = reply, .iov_len = sizeof *reply };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
    ssize_t got;
    do got = recvmsg(fd, &m, MSG_CMSG_CLOEXEC); while (got < 0 && errno == EINTR);
    int n = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *in = (int *)CMSG_DATA(c);
        for (int i = 0; i < count; i++) {
            if (n < maxfds) fds[n++] = in[i];
            else close(in[i]);
        }
    }
    if (got != (ssize_t)sizeof *reply || reply->magic != LB_ATTACH_MAGIC || reply->version != LB_RING_VERSION
        || (m.msg_flags & MSG_CTRUNC)) {
        for (int i = 0; i < n; i++) close(fds[i]);
        if (got == 0) snprintf(err, PCAP_ERRBUF_SIZE, "%s: lb closed the connection without answering", device);
        else snprintf(err, PCAP_ERRBUF_SIZE, "%s: unreadable answer from lb (ring protocol version mismatch?)", device);
        return -1;
    }
    reply->message[sizeof reply->message - 1] = 0;
    if (reply->error != 0) {
        for (int i = 0; i < n; i++) close(fds[i]);
        snprintf(err, PCAP_ERRBUF_SIZE, "%s: %s", device, reply->message);
        errno = reply->error;
        return -1;
    }
    return n;
}

static const char *layout_problem(const struct lb_ring_info *i, uint64_t size) {
    if (i->magic != LB_RING_MAGIC) return "bad magic";
    if (i->version != LB_RING_VERSION) return "another ring protocol version";
    if (i->desc_size != sizeof(struct lb_desc) || i->lane_count < 1 || i->lane_count > LB_MAX_LANES
        || i->desc_count < 1 || (i->desc_count & (i->desc_count - 1)) != 0
        || i->data_size == 0 || (i->data_size & (i->data_size - 1)) != 0
        || i->desc_offset < sizeof(struct lb_lane_header)
        || i->desc_offset + (uint64_t)i->desc_count * 64 > i->data_offset
        || i->data_offset + i->data_size > i->lane_stride
        || i->lane_offset < sizeof(struct lb_ring_info)
        || i->lane_offset + (uint64_t)i->lane_count * i->lane_stride > size
        || i->max_caplen == 0 || i->max_caplen > i->data_size)
        return "inconsistent sizes";
    if (i->link_type != LB_LINKTYPE_ETHERNET) return "a link type other than Ethernet";
    return NULL;
}

/* Connects, retrying for $LBPCAP_WAIT seconds while no lb serves the group. */
static int connect_group(const char *path, const char *device, const char *group, char *err, int *status) {
    const char *w = getenv("LBPCAP_WAIT");
    double wait = w != NULL ? strtod(w, NULL) : 0;
    uint64_t deadline = lbp_mono_ns() + (uint64_t)(wait > 0 ? wait * 1e9 : 0);
    for (;;) {
        int fd = connect_unix(path);
        if (fd >= 0) return fd;
        int e = errno;
        if ((e == ENOENT || e == ECONNREFUSED) && lbp_mono_ns() < deadline) {
            struct timespec ts = { 0, 100 * 1000 * 1000 };
            nanosleep(&ts, NULL);
            continue;
        }
        if (e == ENOENT || e == ECONNREFUSED) {
            *status = PCAP_ERROR_NO_SUCH_DEVICE;
            snprintf(err, PCAP_ERRBUF_SIZE, "%s: no lb serves group '%s' (%s: %s); start lb with -p %s:N, "
                     "or set LB_RUN_DIR to its --run-dir", device, group, path, strerror(e), group);
        } else if (e == EACCES || e == EPERM) {
            *status = PCAP_ERROR_PERM_DENIED;
            snprintf(err, PCAP_ERRBUF_SIZE, "%s: %s: permission denied: only lb's user and members of its "
                     "--ring-group may attach", device, path);
        } else {
            *status = PCAP_ERROR;
            snprintf(err, PCAP_ERRBUF_SIZE, "%s: %s: %s", device, path, strerror(e));
        }
        return -1;
    }
}

static int check_socket_owner(int fd, const char *path, const char *device, char *err) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        snprintf(err, PCAP_ERRBUF_SIZE, "%s: %s: %s", device, path, strerror(errno));
        return -1;
    }
    if (!trusted(st.st_uid)) {
        snprintf(err, PCAP_ERRBUF_SIZE, "%s: %s is owned by uid %u, not by the user lb runs as; refusing it "
                 "(set LB_USER if lb runs as another user)", device, path, (unsigned)st.st_uid);
        return -1;
    }
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid != st.st_uid && cred.uid != 0) {
        snprintf(err, PCAP_ERRBUF_SIZE, "%s: %s is owned by uid %u but served by a process of uid %u; refusing it",
                 device, path, (unsigned)st.st_uid, (unsigned)cred.uid);
        return -1;
    }
    return 0;
}

static void close_all(int *fds, int n) {
    for (int i = 0; i < n; i++) if (fds[i] >= 0) close(fds[i]);
}

/* Attaches h (device, group, ring, tap already parsed). Returns 0, or a PCAP_ERROR_* status with
 * the message in err. */
int lbp_attach(struct lbp *h, char *err) {
    char dir[256], path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    lbp_run_dir(dir, sizeof dir);
    if ((size_t)snprintf(path, sizeof path, "%s/%s.sock", dir, h->group) >= sizeof path) {
        snprintf(err, PCAP_ERRBUF_SIZE, "%s: the socket path %s/%s.sock is too long", h->device, dir, h->group);
        return PCAP_ERROR;
    }
    int status = PCAP_ERROR;
    int fd = connect_group(path, h->device, h->group, err, &status);
    if (fd < 0) return status;
    if (check_socket_owner(fd, path, h->device, err) != 0) {
        close(fd);
        return PCAP_ERROR_PERM_DENIED;
    }
    struct lb_attach_reply reply;
    int fds[3] = { -1, -1, -1 };
    int want = h->tap ? 1 : 3;
    int n = handshake(fd, h->group, h->ring, h->tap ? LB_MODE_TAP : LB_MODE_CONSUMER, h->tap ? 0 : LB_ATTACH_DOORBELL,
                      &reply, fds, 3, err, h->device);
    if (n < 0) {
        int e = errno;
        close(fd);
        return e == ENOENT ? PCAP_ERROR_NO_SUCH_DEVICE : e == EACCES || e == EPERM ? PCAP_ERROR_PERM_DENIED : PCAP_ERROR;
    }
    if (n != want) {
        snprintf(err, PCAP_ERRBUF_SIZE, "%s: lb sent %d descriptors, %d expected (an lb without the doorbell?)",
                 h->device, n, want);
        close_all(fds, n);
        close(fd);
        return PCAP_ERROR;
    }
    for (int i = 0; i < (h->tap ? 1 : 2); i++) {
        struct stat st;
        if (fstat(fds[i], &st) != 0 || !trusted(st.st_uid)) {
            snprintf(err, PCAP_ERRBUF_SIZE, "%s: the ring memory does not belong to the user lb runs as; refusing it",
                     h->device);
            close_all(fds, n);
            close(fd);
            return PCAP_ERROR_PERM_DENIED;
        }
        if (i == 0 && (reply.data_size < sizeof(struct lb_ring_info) || (uint64_t)st.st_size < reply.data_size)) {
            snprintf(err, PCAP_ERRBUF_SIZE, "%s: the ring's data region is %lld bytes, lb announced %llu", h->device,
                     (long long)st.st_size, (unsigned long long)reply.data_size);
            close_all(fds, n);
            close(fd);
            return PCAP_ERROR;
        }
        if (i == 1 && ((uint64_t)st.st_size < reply.control_size || reply.control_size < lb_control_size(1))) {
            snprintf(err, PCAP_ERRBUF_SIZE, "%s: the ring's control region is too small", h->device);
            close_all(fds, n);
            close(fd);
            return PCAP_ERROR;
        }
    }
    h->data_len = (size_t)reply.data_size;
    h->data_map = mmap(NULL, h->data_len, PROT_READ, MAP_SHARED | MAP_POPULATE, fds[0], 0);
    if (h->data_map == MAP_FAILED) {
        snprintf(err, PCAP_ERRBUF_SIZE, "%s: mmap of the ring: %s", h->device, strerror(errno));
        h->data_map = NULL;
        close_all(fds, n);
        close(fd);
        return PCAP_ERROR;
    }
    h->info = (const struct lb_ring_info *)h->data_map;
    const char *problem = layout_problem(h->info, reply.data_size);
    if (problem == NULL && !h->tap && reply.control_size < lb_control_size(h->info->lane_count)) problem = "control region too small";
    if (problem != NULL) {
        snprintf(err, PCAP_ERRBUF_SIZE, "%s: ring layout rejected: %s", h->device, problem);
        close_all(fds, n);
        close(fd);
        lbp_detach(h);
        return PCAP_ERROR;
    }
    if (!h->tap) {
        h->control_len = (size_t)reply.control_size;
        h->control_map = mmap(NULL, h->control_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fds[1], 0);
        if (h->control_map == MAP_FAILED) {
            snprintf(err, PCAP_ERRBUF_SIZE, "%s: mmap of the ring's control region: %s", h->device, strerror(errno));
            h->control_map = NULL;
            close_all(fds, n);
            close(fd);
            lbp_detach(h);
            return PCAP_ERROR;
        }
        h->doorbell = fds[2];
        fds[2] = -1;
    } else {
        h->doorbell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    }
    close_all(fds, 2);
    h->sock = fd;
    h->timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    h->epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN };
    if (h->doorbell < 0 || h->timer < 0 || h->epfd < 0
        || epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->doorbell, &ev) != 0
        || epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->timer, &ev) != 0
        || (ev.events = EPOLLIN | EPOLLRDHUP, epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->sock, &ev)) != 0) {
        snprintf(err, PCAP_ERRBUF_SIZE, "%s: cannot set up the selectable descriptor: %s", h->device, strerror(errno));
        lbp_detach(h);
        return PCAP_ERROR;
    }
    lbp_start(h);
    lbp_debug("%s: attached (lb pid %d, %u lanes, %u slots)", h->device, (int)h->info->producer_pid,
              h->info->lane_count, h->info->desc_count);
    return 0;
}

void lbp_detach(struct lbp *h) {
    if (h->data_map != NULL) munmap(h->data_map, h->data_len);
    if (h->control_map != NULL) munmap(h->control_map, h->control_len);
    h->data_map = h->control_map = NULL;
    h->info = NULL;
    h->report = NULL;
    if (h->epfd >= 0) close(h->epfd);
    if (h->timer >= 0) close(h->timer);
    if (h->doorbell >= 0) close(h->doorbell);
    if (h->sock >= 0) close(h->sock);    /* lb sees the consumer leave at once */
    h->epfd = h->timer = h->doorbell = h->sock = -1;
}

/* For findalldevs: asks the lb serving GROUP for ring 0 as a tap (lb never waits for a tap) and
 * reads the group's ring count and lb's pid from the ring's info block. */
int lbp_probe_ring(const char *run_dir, const char *group, uint32_t *ring_count, int32_t *pid) {
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)], err[PCAP_ERRBUF_SIZE];
    if ((size_t)snprintf(path, sizeof path, "%s/%s.sock", run_dir, group) >= sizeof path) return -1;
    int fd = connect_unix(path);
    if (fd < 0) return -1;
    if (check_socket_owner(fd, path, group, err) != 0) {
        close(fd);
        return -1;
    }
    struct lb_attach_reply reply;
    int fds[1] = { -1 };
    int n = handshake(fd, group, 0, LB_MODE_TAP, 0, &reply, fds, 1, err, group);
    close(fd);
    if (n != 1) {
        if (n > 0) close_all(fds, n);
        return -1;
    }
    int rc = -1;
    struct stat st;
    if (fstat(fds[0], &st) == 0 && trusted(st.st_uid) && (uint64_t)st.st_size >= sizeof(struct lb_ring_info)) {
        void *m = mmap(NULL, sizeof(struct lb_ring_info), PROT_READ, MAP_SHARED, fds[0], 0);
        if (m != MAP_FAILED) {
            const struct lb_ring_info *i = m;
            if (i->magic == LB_RING_MAGIC && i->version == LB_RING_VERSION && i->ring_count > 0) {
                *ring_count = i->ring_count;
                *pid = i->producer_pid;
                rc = 0;
            }
            munmap(m, sizeof(struct lb_ring_info));
        }
    }
    close(fds[0]);
    return rc;
}
