/* umem.h -- private to CLBXdp: the UMEM of an AF_XDP socket (xsk.c receives, xsk_tx.c sends). */
#ifndef LBX_UMEM_H
#define LBX_UMEM_H

#include <stddef.h>
#include <stdint.h>
#include <xdp/xsk.h>

/* Maps frames * frame_size bytes and registers them as a UMEM with a fill ring of fill_size and
 * a completion ring of comp_size entries. On failure returns -errno with the message in err
 * (naming ifname and queue); what was made is left in *area and *umem (NULL when not made) for
 * the caller's close to free. */
int lbx_umem_open(const char *ifname, uint32_t queue, uint32_t frames, uint32_t frame_size, uint32_t fill_size,
                  uint32_t comp_size, void **area, size_t *area_size, struct xsk_umem **umem,
                  struct xsk_ring_prod *fill, struct xsk_ring_cons *comp, char *err, size_t errlen)
    __attribute__((visibility("hidden")));

#endif
