/* devices.c -- lb's rings in the device list (tcpdump -D, tshark -D, Wireshark's interface list)
 * and the device look-ups programs make besides opening a capture. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lbp.h"

static int add_device(pcap_if_t ***tail, const char *name, const char *description) {
    pcap_if_t *d = calloc(1, sizeof *d);
    if (d == NULL) return -1;
    d->name = strdup(name);
    d->description = strdup(description);
    if (d->name == NULL || d->description == NULL) {
        free(d->name);
        free(d->description);
        free(d);
        return -1;
    }
    d->flags = PCAP_IF_UP | PCAP_IF_RUNNING | PCAP_IF_CONNECTION_STATUS_NOT_APPLICABLE;
    **tail = d;
    *tail = &d->next;
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

/* Appends lb:GROUP:K and lbtap:GROUP:K for every ring of every lb serving in the run directory.
 * A socket nobody answers (an lb that died) lists nothing. The entries are allocated as libpcap
 * allocates its own, so pcap_freealldevs frees them. */
static void add_rings(pcap_if_t **list) {
    pcap_if_t **tail = list;
    while (*tail != NULL) tail = &(*tail)->next;
    char dir[256];
    lbp_run_dir(dir, sizeof dir);
    struct dirent **names;
    int count = scandir(dir, &names, NULL, by_name);
    lbp_debug("findalldevs: %s: %d entries", dir, count);
    if (count < 0) return;
    for (int i = 0; i < count; i++) {
        const char *n = names[i]->d_name;
        size_t len = strlen(n);
        char group[LB_GROUP_NAME_MAX];
        uint32_t rings;
        int32_t pid;
        if (len > 5 && len - 5 < sizeof group && strcmp(n + len - 5, ".sock") == 0) {
            memcpy(group, n, len - 5);
            group[len - 5] = 0;
            int probed = lbp_probe_ring(dir, group, &rings, &pid);
            lbp_debug("findalldevs: group %s: %s", group, probed == 0 ? "answers" : "no answer");
            if (probed == 0) {
                for (uint32_t k = 0; k < rings && k < 4096; k++) {
                    char name[64], text[160];
                    snprintf(name, sizeof name, "lb:%s:%u", group, k);
                    snprintf(text, sizeof text, "lb ring %u of %u in group %s (consumes it; lb pid %d)", k, rings, group, (int)pid);
                    add_device(&tail, name, text);
                    snprintf(name, sizeof name, "lbtap:%s:%u", group, k);
                    snprintf(text, sizeof text, "lb ring %s:%u, read-only tap (lb pid %d)", group, k, (int)pid);
                    add_device(&tail, name, text);
                }
            }
        }
        free(names[i]);
    }
    free(names);
}

LBP_EXPORT int pcap_findalldevs(pcap_if_t **alldevs, char *errbuf) {
    int r = REAL(pcap_findalldevs)(alldevs, errbuf);
    if (r != 0) return r;
    add_rings(alldevs);
    return 0;
}

/* A ring has no IPv4 network: say so as libpcap does for the "any" device (0/0, success), so
 * programs that look it up for the filter's netmask go on. */
LBP_EXPORT int pcap_lookupnet(const char *device, bpf_u_int32 *net, bpf_u_int32 *mask, char *errbuf) {
    if (!lbp_claims(device)) return REAL(pcap_lookupnet)(device, net, mask, errbuf);
    *net = 0;
    *mask = 0;
    return 0;
}

/* argus asks the kernel whether the device is up (SIOCGIFFLAGS on its name) and closes the
 * capture when that fails; the kernel knows no device "lb:zeek:3" (and would cut the name at the
 * first ':'). When the real call fails for an lb name, answer "up and running". Every other
 * ioctl, and every other name, is the real one's. */
LBP_EXPORT int ioctl(int fd, unsigned long request, ...) {
    va_list ap;
    va_start(ap, request);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    int r = REAL(ioctl)(fd, request, arg);
    if (r < 0 && request == SIOCGIFFLAGS && arg != NULL) {
        int e = errno;
        struct ifreq *ifr = arg;
        char name[IFNAMSIZ + 1];
        memcpy(name, ifr->ifr_name, IFNAMSIZ);
        name[IFNAMSIZ] = 0;
        if (e == ENODEV && lbp_claims(name)) {
            ifr->ifr_flags = IFF_UP | IFF_RUNNING;
            return 0;
        }
        errno = e;
    }
    return r;
}
