/* umem.h: the UMEM of an AF_XDP socket. */
#define _GNU_SOURCE
#include "umem.h"
#include "fail.h"
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

int lbx_umem_open(const char *ifname, uint32_t queue, uint32_t frames, uint32_t frame_size, uint32_t fill_size,
                  uint32_t comp_size, void **area, size_t *area_size, struct xsk_umem **umem,
                  struct xsk_ring_prod *fill, struct xsk_ring_cons *comp, char *err, size_t errlen)
{
    *umem = NULL;
    *area_size = (size_t)frames * frame_size;
    *area = mmap(NULL, *area_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (*area == MAP_FAILED) {
        *area = NULL;
        return lbx_fail(err, errlen, ENOMEM, "%s queue %u: cannot allocate the UMEM (%zu bytes)", ifname, queue, *area_size);
    }
    struct xsk_umem_config uc = {
        .fill_size = fill_size,
        .comp_size = comp_size,
        .frame_size = frame_size,
        .frame_headroom = 0,
        .flags = 0,
    };
    int rc = xsk_umem__create(umem, *area, *area_size, fill, comp, &uc);
    if (rc) {
        *umem = NULL;
        return lbx_fail(err, errlen, rc, "%s queue %u: cannot register the UMEM: %s (lb needs CAP_NET_RAW and CAP_IPC_LOCK, "
                        "or a larger RLIMIT_MEMLOCK)", ifname, queue, strerror(-rc));
    }
    return 0;
}
