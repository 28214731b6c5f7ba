// --user: after setup lb becomes an unprivileged user (all threads: the raw syscalls through
// glibc's set*id apply to every thread of the process).
#define _GNU_SOURCE
#include "lb_xdp.h"
#include "fail.h"
#include <errno.h>
#include <grp.h>
#include <string.h>
#include <unistd.h>

int lbx_drop_to_user(uint32_t uid, uint32_t gid, char *err, size_t errlen)
{
    gid_t g = gid;
    if (setgroups(1, &g))
        return lbx_fail(err, errlen, errno, "setgroups: %s", strerror(errno));
    if (setresgid(gid, gid, gid))
        return lbx_fail(err, errlen, errno, "setgid %u: %s", gid, strerror(errno));
    if (setresuid(uid, uid, uid))
        return lbx_fail(err, errlen, errno, "setuid %u: %s", uid, strerror(errno));
    return 0;
}
