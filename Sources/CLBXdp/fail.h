/* fail.h -- private to CLBXdp: the one error helper of prog.c, xsk.c and tpacket.c. */
#ifndef LBX_FAIL_H
#define LBX_FAIL_H

#include <stddef.h>

/* Writes the message into err (when given) and returns -code (code may already be negative). */
int lbx_fail(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), visibility("hidden")));

#endif
