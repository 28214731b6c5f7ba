/* lb_xdp.h: loading and attaching lb's XDP program (libbpf). */
#define _GNU_SOURCE
#include "lb_xdp.h"
#include "fail.h"
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

struct lbx_prog {
    struct bpf_object *obj;
    int prog_fd;
    int xsks_fd;
    int cfg_fd;
    int shunts_fd;
    int link_fd;
    const uint64_t *counters;   /* mmap of lb_stats */
    size_t counters_size;
};

static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    if (level == LIBBPF_WARN && getenv("LB_LIBBPF_DEBUG"))
        return vfprintf(stderr, fmt, ap);
    if (level == LIBBPF_DEBUG && getenv("LB_LIBBPF_DEBUG"))
        return vfprintf(stderr, fmt, ap);
    return 0;
}

int lbx_prog_open(const char *path, struct lbx_prog **out, char *err, size_t errlen)
{
    libbpf_set_print(quiet_print);
    struct lbx_prog *p = calloc(1, sizeof *p);
    if (!p)
        return lbx_fail(err, errlen, ENOMEM, "out of memory");
    p->link_fd = -1;
    p->obj = bpf_object__open_file(path, NULL);
    long e = libbpf_get_error(p->obj);
    if (e) {
        p->obj = NULL;
        free(p);
        return lbx_fail(err, errlen, (int)e, "cannot open the XDP object %s: %s", path, strerror((int)-e));
    }
    int rc = bpf_object__load(p->obj);
    if (rc) {
        bpf_object__close(p->obj);
        free(p);
        return lbx_fail(err, errlen, rc, "cannot load the XDP program from %s: %s (lb needs CAP_BPF and CAP_NET_ADMIN; "
                    "LB_LIBBPF_DEBUG=1 shows the verifier's log)", path, strerror(-rc));
    }
    struct bpf_program *prog = bpf_object__find_program_by_name(p->obj, "lb_xdp");
    struct bpf_map *xsks = bpf_object__find_map_by_name(p->obj, "lb_xsks");
    struct bpf_map *cfg = bpf_object__find_map_by_name(p->obj, "lb_cfg");
    struct bpf_map *stats = bpf_object__find_map_by_name(p->obj, "lb_stats");
    struct bpf_map *shunts = bpf_object__find_map_by_name(p->obj, "lb_shunts");
    if (!prog || !xsks || !cfg || !stats || !shunts) {
        bpf_object__close(p->obj);
        free(p);
        return lbx_fail(err, errlen, EINVAL, "%s is not lb's XDP program (no lb_xdp, lb_xsks, lb_cfg, lb_stats or lb_shunts)", path);
    }
    p->shunts_fd = bpf_map__fd(shunts);
    p->prog_fd = bpf_program__fd(prog);
    p->xsks_fd = bpf_map__fd(xsks);
    p->cfg_fd = bpf_map__fd(cfg);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    p->counters_size = ((size_t)LB_XDP_MAX_CPUS * LB_XDP_NSTATS * 8 + page - 1) / page * page;
    void *m = mmap(NULL, p->counters_size, PROT_READ, MAP_SHARED, bpf_map__fd(stats), 0);
    if (m == MAP_FAILED) {
        int code = errno;
        bpf_object__close(p->obj);
        free(p);
        return lbx_fail(err, errlen, code, "cannot map the XDP program's counters: %s", strerror(code));
    }
    p->counters = m;
    *out = p;
    return 0;
}

int lbx_prog_configure(struct lbx_prog *p, const struct lb_xdp_config *cfg, char *err, size_t errlen)
{
    uint32_t zero = 0;
    if (bpf_map_update_elem(p->cfg_fd, &zero, cfg, BPF_ANY))
        return lbx_fail(err, errlen, errno, "cannot write the divert filter into the XDP program: %s", strerror(errno));
    return 0;
}

static void prog_name(uint32_t id, char *name, size_t namelen)
{
    snprintf(name, namelen, "?");
    int fd = bpf_prog_get_fd_by_id(id);
    if (fd < 0)
        return;
    struct bpf_prog_info info;
    memset(&info, 0, sizeof info);
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
        snprintf(name, namelen, "%s", info.name);
    close(fd);
}

uint32_t lbx_attached_prog(int ifindex, char *name, size_t namelen)
{
    LIBBPF_OPTS(bpf_xdp_query_opts, q);
    if (bpf_xdp_query(ifindex, 0, &q))
        return 0;
    uint32_t id = q.prog_id ? q.prog_id : (q.drv_prog_id ? q.drv_prog_id : q.skb_prog_id);
    if (id && name)
        prog_name(id, name, namelen);
    return id;
}

int lbx_prog_attach(struct lbx_prog *p, int ifindex, int mode, char *err, size_t errlen)
{
    char ifname[IF_NAMESIZE] = "?";
    if_indextoname((unsigned)ifindex, ifname);
    LIBBPF_OPTS(bpf_xdp_query_opts, q);
    if (bpf_xdp_query(ifindex, 0, &q) == 0) {
        uint32_t ids[2] = { q.drv_prog_id, q.skb_prog_id };
        uint32_t modes[2] = { XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE };
        for (int i = 0; i < 2; i++) {
            if (!ids[i])
                continue;
            char name[64];
            prog_name(ids[i], name, sizeof name);
            if (strcmp(name, "lb_xdp") != 0)
                return lbx_fail(err, errlen, EEXIST, "%s already has an XDP program that is not lb's: id %u, name '%s' "
                            "(remove it with: ip link set dev %s xdp off)", ifname, ids[i], name, ifname);
            /* ours: left behind by a killed lb (netlink-attached); a live lb holds it with a
             * bpf_link, and then the detach fails with EBUSY */
            int rc = bpf_xdp_detach(ifindex, modes[i], NULL);
            if (rc == -EBUSY)
                return lbx_fail(err, errlen, EBUSY, "another lb already runs on %s (its XDP program, id %u, is held by a link)",
                            ifname, ids[i]);
            if (rc)
                return lbx_fail(err, errlen, rc, "cannot replace the lb XDP program left on %s (id %u): %s",
                            ifname, ids[i], strerror(-rc));
        }
    }
    LIBBPF_OPTS(bpf_link_create_opts, o, .flags = mode == LBX_MODE_NATIVE ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE);
    int fd = bpf_link_create(p->prog_fd, ifindex, BPF_XDP, &o);
    if (fd < 0) {
        int code = errno;
        if (code == EBUSY || code == EEXIST) {
            char name[64] = "?";
            uint32_t id = lbx_attached_prog(ifindex, name, sizeof name);
            return lbx_fail(err, errlen, EBUSY, "%s is taken: XDP program id %u '%s' is attached (another lb?)", ifname, id, name);
        }
        return lbx_fail(err, errlen, code, "cannot attach the XDP program to %s in %s mode: %s", ifname,
                    mode == LBX_MODE_NATIVE ? "native" : "generic", strerror(code));
    }
    p->link_fd = fd;
    return 0;
}

int lbx_prog_set_socket(struct lbx_prog *p, uint32_t queue, int fd, char *err, size_t errlen)
{
    if (bpf_map_update_elem(p->xsks_fd, &queue, &fd, BPF_ANY))
        return lbx_fail(err, errlen, errno, "cannot put the AF_XDP socket of queue %u into the XSKMAP: %s", queue, strerror(errno));
    return 0;
}

void lbx_prog_counters(const struct lbx_prog *p, uint64_t *out)
{
    for (int i = 0; i < LB_XDP_NSTATS; i++)
        out[i] = 0;
    for (int c = 0; c < LB_XDP_MAX_CPUS; c++)
        for (int i = 0; i < LB_XDP_NSTATS; i++)
            out[i] += __atomic_load_n(&p->counters[c * LB_XDP_NSTATS + i], __ATOMIC_RELAXED);
}

void lbx_prog_close(struct lbx_prog *p)
{
    if (!p)
        return;
    if (p->link_fd >= 0)
        close(p->link_fd);
    if (p->counters)
        munmap((void *)p->counters, p->counters_size);
    bpf_object__close(p->obj);
    free(p);
}

int lbx_prog_shunt_set(struct lbx_prog *p, const struct lb_shunt_key *k, unsigned char directions, char *err, size_t errlen)
{
    struct lb_shunt_value v;
    if (bpf_map_lookup_elem(p->shunts_fd, k, &v) == 0) {
        v.directions = directions;             /* counts stay */
    } else {
        memset(&v, 0, sizeof v);
        v.directions = directions;
    }
    if (bpf_map_update_elem(p->shunts_fd, k, &v, BPF_ANY))
        return lbx_fail(err, errlen, errno, "cannot put a shunted flow into the XDP program: %s", strerror(errno));
    return 0;
}

int lbx_prog_shunt_del(struct lbx_prog *p, const struct lb_shunt_key *k)
{
    return bpf_map_delete_elem(p->shunts_fd, k) ? -errno : 0;
}

int lbx_prog_shunt_get(struct lbx_prog *p, const struct lb_shunt_key *k, struct lb_shunt_value *v)
{
    return bpf_map_lookup_elem(p->shunts_fd, k, v) ? -errno : 0;
}

int lbx_prog_test_run(struct lbx_prog *p, const void *frame, uint32_t len, uint32_t *action)
{
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = len, .repeat = 1);
    int rc = bpf_prog_test_run_opts(p->prog_fd, &o);
    if (rc)
        return -errno;
    *action = o.retval;
    return 0;
}

int lbx_prog_test_time(struct lbx_prog *p, const void *frame, uint32_t len, uint32_t repeat, uint32_t *action, uint32_t *ns)
{
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame, .data_size_in = len, .repeat = repeat);
    int rc = bpf_prog_test_run_opts(p->prog_fd, &o);
    if (rc)
        return -errno;
    *action = o.retval;
    *ns = o.duration;
    return 0;
}
