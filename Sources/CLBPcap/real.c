/* real.c -- the real libpcap behind this library.
 *
 * This library defines pcap_create, pcap_dispatch and the rest; for a handle that is not lb's
 * it calls the next definition in the lookup order (the system's libpcap) through
 * dlsym(RTLD_NEXT). Results are cached; two threads racing to fill a cache store the same
 * value. Functions this library does not define (pcap_open_dead, bpf_filter, ...) are linked
 * normally. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>
#include "lbp.h"

#define LBP_REAL_MAX 64

static struct { const char *name; void *fn; } cache[LBP_REAL_MAX];

void *lbp_real(const char *name) {
    for (int i = 0; i < LBP_REAL_MAX; i++) {
        const char *n = __atomic_load_n(&cache[i].name, __ATOMIC_ACQUIRE);
        if (n == NULL) {
            void *fn = dlsym(RTLD_NEXT, name);
            if (fn == NULL) return NULL;
            const char *expected = NULL;
            if (__atomic_compare_exchange_n(&cache[i].name, &expected, (const char *)1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                __atomic_store_n(&cache[i].fn, fn, __ATOMIC_RELEASE);
                __atomic_store_n(&cache[i].name, name, __ATOMIC_RELEASE);
            }
            return fn;
        }
        if (n != (const char *)1 && strcmp(n, name) == 0) return __atomic_load_n(&cache[i].fn, __ATOMIC_ACQUIRE);
    }
    return dlsym(RTLD_NEXT, name);
}
