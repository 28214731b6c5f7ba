/* Compiles lb_worker.h once so that its _Static_asserts are checked on every build. */
#include "lb_worker.h"
