#ifndef STOCKROOM_CLIBPQ_SHIM_H
#define STOCKROOM_CLIBPQ_SHIM_H
// Debian installs libpq's headers under /usr/include/postgresql; naming the
// folder here means a machine without pkg-config still finds them.
#include <postgresql/libpq-fe.h>
#endif
