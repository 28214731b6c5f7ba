#include "fail.h"
#include <stdarg.h>
#include <stdio.h>

int lbx_fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return code < 0 ? code : -code;
}
