/* table.c -- which pcap_t handles belong to this library.
 *
 * pcap_t is opaque, so lb's handles are kept in a side table keyed by the pointer the
 * program holds. Every interposed entry point looks its handle up here; one that is not
 * found goes to the real libpcap untouched. The keys are atomics, scanned without a lock
 * (programs open a handful of handles; Suricata reads each from its own thread); a key is
 * cleared before its entry is freed, and lookups never dereference an entry they did not
 * match. */
#include "lbp.h"

#define LBP_SLOTS 256

static pcap_t *keys[LBP_SLOTS];
static struct lbp *vals[LBP_SLOTS];
static unsigned used;   /* slots ever used: lookups scan [0, used) */

struct lbp *lbp_find(pcap_t *p) {
    if (p == NULL) return NULL;
    unsigned n = __atomic_load_n(&used, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n; i++) {
        if (__atomic_load_n(&keys[i], __ATOMIC_ACQUIRE) == p) return __atomic_load_n(&vals[i], __ATOMIC_ACQUIRE);
    }
    return NULL;
}

int lbp_register(struct lbp *h) {
    for (unsigned i = 0; i < LBP_SLOTS; i++) {
        pcap_t *expected = NULL;
        /* claim the slot with a sentinel first, so no lookup matches it half-filled */
        if (__atomic_compare_exchange_n(&keys[i], &expected, (pcap_t *)(uintptr_t)1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            __atomic_store_n(&vals[i], h, __ATOMIC_RELEASE);
            __atomic_store_n(&keys[i], h->p, __ATOMIC_RELEASE);
            unsigned n = __atomic_load_n(&used, __ATOMIC_ACQUIRE);
            while (n < i + 1 && !__atomic_compare_exchange_n(&used, &n, i + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {}
            return 0;
        }
    }
    return -1;
}

void lbp_unregister(struct lbp *h) {
    unsigned n = __atomic_load_n(&used, __ATOMIC_ACQUIRE);
    for (unsigned i = 0; i < n; i++) {
        if (__atomic_load_n(&keys[i], __ATOMIC_ACQUIRE) == h->p) {
            __atomic_store_n(&vals[i], NULL, __ATOMIC_RELEASE);
            __atomic_store_n(&keys[i], NULL, __ATOMIC_RELEASE);
            return;
        }
    }
}
